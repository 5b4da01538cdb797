"""Federate kinds a study can add to its federation: each a typed config (the scenario's section), its
ports and the plan of its federate, beside its model (``lec_cosim/models``) and its program (``federates/``).
"""
