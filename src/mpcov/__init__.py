"""mpcov: code coverage for every process a Python program or test suite starts.

This module stays nearly empty on purpose: every measured process imports the
``mpcov`` package on its way to :mod:`mpcov.bootstrap`, so anything added here
is paid for at the start of every child process.
"""

__version__ = "0.1.0"
