"""The one trainer of the AED and LLM stages.

- ``engine``: single process, DDP and DeepSpeed ZeRO 1/2/3 behind one interface (the only place they differ).
- ``trainer``: ``Trainer`` with ``fit``, ``train_one_epoch``, ``validate``, ``save`` and ``resume``.
- ``checkpoint``: WeNet-compatible ``epoch_N.pt`` + ``epoch_N.yaml``, plus the training state for an exact resume.
- ``scheduler``: warmuplr (WeNet), cosine and constant learning-rate schedules.
- ``average``: ``average_model``, best N by CV loss or last N checkpoints.

Nothing is imported here so that ``import wenet_llm.train`` stays cheap (DeepSpeed loads lazily).
"""
