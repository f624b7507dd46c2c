"""lewm: LeWorldModel, a JEPA world model trained from pixels with prediction MSE + lambda * SIGReg."""

from lewm.errors import LewmError

__version__ = "0.1.0"
__all__ = ["LewmError", "__version__"]
