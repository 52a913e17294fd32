"""sealhub gateway: the HTTPS service through which departments exchange sealed documents."""

import warnings

from cryptography.utils import CryptographyDeprecationWarning

# pyhanko imports cryptography's DSA module, which warns at import; no key here is DSA, and
# that warning would be the first line every operator reads.
warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning, module="pyhanko")

__version__ = "0.1.0"
