"""The papers and lectures the catalogue encodes: one :class:`verify.Source` per paper (citation,
BibTeX, shared conventions), which every theorem from it refers to with ``SOURCE.at(...)``.

This module declares no theorem; one paper has one entry here.
"""

TIAN2018 = """@article{tian2018theoretical,
  title   = {A Theoretical Framework for Deep Locally Connected ReLU Network},
  author  = {Tian, Yuandong},
  journal = {arXiv preprint arXiv:1809.10829},
  year    = {2018}
}"""

PATEL2016 = """@inproceedings{patel2016probabilistic,
  title     = {A Probabilistic Framework for Deep Learning},
  author    = {Patel, Ankit B. and Nguyen, Minh Tan and Baraniuk, Richard},
  booktitle = {Advances in Neural Information Processing Systems},
  volume    = {29},
  year      = {2016}
}"""

KOO_BACKPROP = """@misc{koo_backprop,
  title  = {Neural Network -- Back-propagation},
  author = {Koo, Hyung Il},
  note   = {Lecture slides: block-based perspective, derivative of max, saliency visualization},
  year   = {n.d.}
}"""


# ----------------------------------------------------------------------------- one Source per paper

from verify.spec import Source  # noqa: E402  (the BibTeX strings above stay plain text)

PATEL = Source(
    key="patel2016",
    citation="Patel, Nguyen, Baraniuk, 'A probabilistic framework for deep learning' (NIPS 2016); "
             "A. B. Patel, Stats 385 lecture (2017)",
    bibtex=PATEL2016,
)

TIAN = Source(
    key="tian2018",
    citation="Tian (2018), arXiv:1809.10829, 'A theoretical framework for deep locally connected ReLU network'",
    bibtex=TIAN2018,
)

KOO = Source(
    key="koo",
    citation="H. I. Koo, lecture 'Neural Network - Back-propagation' (slides 'Block-based perspective: Basic Math', "
             "'Block-based representation', 'Saliency visualization')",
    bibtex=KOO_BACKPROP,
)
