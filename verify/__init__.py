"""dlverify: theorems of deep-learning theory, checked symbolically (SymPy), numerically (JAX,
float64, ``jit`` + ``vmap``) and by counterexample search (Hypothesis).

The public contract for a theorem module is everything imported here; nothing else in
``verify`` is needed to write a theorem.
"""

from verify.ops import xp  # first: enables float64 in JAX
from verify.errors import TheoremError, UsageError, VerifyError
from verify.numeric import Residual, Structure, residual
from verify.sampling import Rng
from verify.spec import Assumption, Mutant, Theorem, Tolerance
from verify.symbolic import ALL_SIZES, Agrees, Cases, Derivation, Equal, Monotone, Separable, up_to

__version__ = "0.1.0"

__all__ = [
    "ALL_SIZES",
    "Agrees",
    "Assumption",
    "Cases",
    "Derivation",
    "Equal",
    "Monotone",
    "Mutant",
    "Residual",
    "Rng",
    "Separable",
    "Structure",
    "Theorem",
    "TheoremError",
    "Tolerance",
    "UsageError",
    "VerifyError",
    "residual",
    "up_to",
    "xp",
]
