"""What a run folder is, for trainers and dashboard alike: the RunSpec, framework names, file names,
status and settings files, atomic JSON, TFRecord framing."""
from twinboard.contract.spec import RunSpec, SpecError
