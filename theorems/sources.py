"""The papers and lectures the catalogue encodes: one :class:`verify.Source` per paper (citation,
BibTeX, shared conventions), which every theorem from it refers to with ``SOURCE.at(...)``.

This module declares no theorem; one paper has one entry here.

The entries work under classic BibTeX and under biblatex + biber without warnings (checked by
``tests/test_sources_bibtex.py`` with the ``plain``, ``unsrt``, ``alpha`` and ``plainnat`` styles
and with biblatex's ``numeric`` and ``authoryear`` styles). The arXiv paper is a ``@misc`` entry
in arXiv's own export form (``eprint``, ``archivePrefix``, ``primaryClass``) plus its DOI:
biblatex prints the identifier, ``plainnat`` prints the URL, while the oldest styles
(``plain``, ``unsrt``, ``alpha``) ignore ``eprint`` and ``url`` altogether. Title words that
must keep their capitals are braced (``{ReLU}``), since classic styles lower-case titles. The
lecture is undated, so it has no ``year``: ``plainnat`` then warns "empty year" (the one
warning left), and a biblatex author-year style prints "n.d.".
"""

TIAN2018 = """@misc{tian2018theoretical,
  title         = {A Theoretical Framework for Deep Locally Connected {ReLU} Network},
  author        = {Tian, Yuandong},
  year          = {2018},
  eprint        = {1809.10829},
  archivePrefix = {arXiv},
  primaryClass  = {cs.LG},
  doi           = {10.48550/arXiv.1809.10829},
  url           = {https://arxiv.org/abs/1809.10829}
}"""

PATEL2016 = """@inproceedings{patel2016probabilistic,
  title     = {A Probabilistic Framework for Deep Learning},
  author    = {Patel, Ankit B. and Nguyen, Minh Tan and Baraniuk, Richard},
  booktitle = {Advances in Neural Information Processing Systems},
  volume    = {29},
  year      = {2016}
}"""

KOO_BACKPROP = """@misc{koo_backprop,
  title        = {Neural Network -- Back-propagation},
  author       = {Koo, Hyung Il},
  howpublished = {Lecture slides},
  note         = {Block-based perspective, derivative of max, saliency visualization}
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
