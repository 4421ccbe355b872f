"""Cross-modal retrieval: two views per item, embeddings trained with hinge losses on in-batch
negatives (VSE++, Faghri et al., BMVC 2018), scored by Recall@K. ``losses.py`` and
``evaluate.py`` are plain functions on tensors; ``trainwise.tasks.Retrieval`` wires them into
the loop; the paired datasets are ``trainwise.data.paired``, the model ``models/two_tower.py``.
"""

from .evaluate import evaluate_retrieval, fold_metrics, ranks, retrieval_metrics
from .losses import HINGE_LOSSES, LOSSES, collapse_value, max_of_hinges, spread, sum_of_hinges

__all__ = ["HINGE_LOSSES", "LOSSES", "collapse_value", "evaluate_retrieval", "fold_metrics", "max_of_hinges",
           "ranks", "retrieval_metrics", "spread", "sum_of_hinges"]
