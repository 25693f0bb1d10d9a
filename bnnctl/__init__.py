"""bnnctl: an experiment runner for binary neural networks.

The library (everything here except ``cli/``) never imports the command line;
the CLI is a thin layer that composes configs, calls the library and prints.
"""

__version__ = "0.2.0"
