"""The notebook's ``check()`` as a student runs it: in a real Jupyter kernel (nbclient + ipykernel,
where ``__main__`` is IPython's namespace and torch adds the ``__mp_main__`` alias) and in a plain
script, with helpers, constants, a tensor constant, a global computed from ``model`` and a class."""

from __future__ import annotations

import subprocess
import sys

import nbformat

from required import available, missing

SETUP = """\
import torch
from mechgrade import check
from mechgrade.models import load_model

model = load_model("embedded")
"""
# sae_decode = f @ W_dec + b_dec, written the way students write it: through a helper, a class,
# module constants, a tensor constant and a global computed from the model.
DEFINITIONS = """\
SCALE = 2.0
OFFSET = torch.tensor(1.0)
N_LAYERS = model.cfg.n_layers

def _mm(a, b):
    return a @ b

class Decoder:
    def __init__(self, W_dec):
        self.W_dec = W_dec

    def apply(self, f):
        return _mm(f, self.W_dec)

def sae_decode(f, W_dec, b_dec):
    return Decoder(W_dec).apply(f) * (SCALE / 2.0) * OFFSET + b_dec + 0 * N_LAYERS
"""
CHECK = "print(repr(check('lesson27', sae_decode)))"
# A function that reads the notebook's `model`: that cannot be sent, and the result must say so.
USES_MODEL = """\
def sae_decode(f, W_dec, b_dec):
    return f @ W_dec + b_dec + 0 * model.cfg.d_model
"""


def assert_checked(sent: str, not_sent: str, where: str) -> None:
    sent, not_sent = " ".join(sent.split()), " ".join(not_sent.split())  # the table wraps long lines
    assert "Total: 2 / 2 points" in sent, sent
    assert "Not sent" not in sent and "import" not in sent, sent
    assert "Total: 0 / 2 points" in not_sent, not_sent
    assert "Not sent with sae_decode (pass these as arguments instead): model (TransformerBridge)." in not_sent, not_sent
    assert "sae.py" not in not_sent, not_sent  # the student has no sae.py
    assert f"NameError: name 'model' is not defined (sae_decode, {where})" in not_sent, not_sent


def test_check_in_a_real_jupyter_kernel():
    if not available("jupyter"):
        missing("jupyter", "a Jupyter kernel (nbclient + ipykernel, the test extra) is not installed")
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in (SETUP, DEFINITIONS, CHECK, USES_MODEL, CHECK)]
    NotebookClient(nb, kernel_name="python3", timeout=300).execute()
    texts = ["".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream") for cell in nb.cells]
    errors = [o for cell in nb.cells for o in cell.outputs if o.output_type == "error"]
    assert not errors, errors
    assert_checked(texts[2], texts[4], "line 2 of its cell")
    assert "this notebook" in " ".join(texts[4].split())


def test_check_in_a_plain_script(tmp_path):
    script = tmp_path / "work.py"
    script.write_text("\n".join((SETUP, DEFINITIONS, CHECK, "print('=====')", USES_MODEL, CHECK)))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    sent, not_sent = done.stdout.split("=====")
    line = script.read_text().splitlines().index("    return f @ W_dec + b_dec + 0 * model.cfg.d_model") + 1
    assert_checked(sent, not_sent, f"line {line} of work.py")
    assert "this notebook" not in done.stdout  # a script is not a notebook
