"""The scenario schema, one module per study (its pydantic model and the reader that validates and resolves
it) beside what they share (``base``) and what the two studies on the IEEE feeder share (``ieee_feeder``).
``lec_cosim.scenario`` loads a file and hands it to the reader of its ``kind:``."""
