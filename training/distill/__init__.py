"""Distillation: a LoRA adapter for the small model, fine-tuned on a teacher's answers (`costmesh distill train`).

`train.py` runs in the training environment (.venv-train: torch, transformers, peft); `curve.py` is pure.
"""
