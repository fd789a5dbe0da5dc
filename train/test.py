"""The original's name for the inference server, kept so its command line keeps working: `python train/test.py`
= `python train/serve.py` = `maskrcnn-body serve`. It starts the server; it does not run tests (`make test` does)."""

import os
import runpy

if __name__ == "__main__":
    runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "serve.py"), run_name="__main__")
