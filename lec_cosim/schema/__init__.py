"""What the scenario schemas share: the strict base model, fields and readers (``base``) and the IEEE
feeder section of the two studies on that feeder (``ieee_feeder``). Each study's own schema (its pydantic
model and the reader that validates and resolves it) is ``lec_cosim/studies/<kind>/schema.py``;
``lec_cosim.scenario`` loads a file and hands it to the reader of its ``kind:``."""
