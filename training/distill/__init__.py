"""Distillation: students (LoRA adapters on the small model) fitted to a teacher's answers (`costmesh distill`).

`train.py` runs in the training environment (.venv-train: torch, transformers, peft) and imports nothing of
costmesh but `curve.py`, which is pure.
"""
