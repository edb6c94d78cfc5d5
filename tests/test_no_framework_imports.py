"""The dashboard process must never load torch, tensorflow, tensorboardX or keras (seconds, hundreds of MB)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "tensorflow", "tensorboardX", "keras", "onnxruntime", "ai_edge_litert", "onnx", "onnxscript",
         "executorch")
# Every module of the dashboard's library; the supervisor and warm-up are processes of their own but
# are held to the same rule. A module run only to build the compiled kernel (numba) is left out.
SOURCES = sorted(p for p in (ROOT / "twinboard").rglob("*.py") if "__pycache__" not in p.parts)


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_importing_every_dashboard_module_loads_no_framework():
    modules = [_module(p) for p in SOURCES if p.stem not in ("__main__",)]
    assert len(modules) > 30, modules  # the glob found the package tree
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"bad = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"dashboard modules imported {out.stdout.strip()}"


def test_no_framework_import_statement_in_dashboard_sources():
    offenders = []
    for path in [ROOT / "app.py", *SOURCES, *(ROOT / "pages").glob("*.py")]:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            words = line.strip().replace(",", " ").split()
            if len(words) >= 2 and words[0] in ("import", "from") and words[1].split(".")[0] in HEAVY:
                offenders.append(f"{path.name}:{n}: {line.strip()}")
    assert not offenders, offenders
