"""BibTeX entries of the papers and lectures the catalogue encodes (``verify cite`` prints them).

This module declares no theorem; the theorem modules import their source's entry from here so
that one paper has one entry.
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
