"""t-of-n unseal of the local sealer: the operators' key-encryption shares and the data key they wrap.

    shares.py    the printed form of one operator share (checksum, set id) and its check value
    keyfile.py   the share file: the data key wrapped per share set, written atomically
    unsealer.py  sealed/unsealed state, progress, init and rekey; the sealer the engine gets
    handler.py   UnsealRequest frames (HPKE-encrypted shares) into unsealer calls

The design and its limits are in docs/threat-model.md ("Operator shares"); the operator's
procedures in README "Unsealing" and "Rotating operator shares".
"""
