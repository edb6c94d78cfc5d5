"""Speed of the execution modes, measured: face-offs (one spec, every mode: PyTorch eager and
torch.compile, TensorFlow eager, tf.function and XLA) launched as grouped pairs, what each mode
cost (import, first step, step time, memory) and whether it computed the same loss as eager.

- ``faceoff``: the modes and the pairs that cover them, launching a face-off, finding face-off
  groups in a logdir, reading one framework folder into a ``ModeRun``.
- ``measures``: ``speed_table`` (one row a run), the break-even step count and the plain-language
  line per framework.
- ``charts``: bars (first step, step time p50 with p95 whiskers, peak memory), step-time boxes.
- ``report``: the table and the lines as text, for the command line.
Reads files only (twinboard.events, twinboard.contract); no framework is imported.
"""
from twinboard.speed.faceoff import (
    FACEOFF_PAIRS, GROUP_KEY, MODE_FIELDS, MODES, TF_MODES, TORCH_MODES, Faceoff, Folder, ModeRun, faceoff_groups,
    group_folders, launch_faceoff, mode_of, new_group, pair_folders, read_mode_run, read_runs, run_name, signature)
from twinboard.speed.measures import (
    COLUMNS, MODE_LABELS, NUMBERS, REFERENCE, break_even, framework_lines, framework_sentences, labels,
    loss_agreement, mode_label, reference, speed_table, steady)
from twinboard.speed.charts import (
    MODE_PATTERNS, first_step_figure, memory_figure, step_box_figure, step_time_figure)
from twinboard.speed.report import lines_text, table_text
