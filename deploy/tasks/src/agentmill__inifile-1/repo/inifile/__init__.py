"""inifile - a small, dependency-free INI parser and writer.

Typical use::

    >>> import inifile
    >>> doc = inifile.loads("[db]\\nuser = admin\\nretries = 3\\n")
    >>> doc.get("db", "user")
    'admin'
    >>> doc.getint("db", "retries")
    3
    >>> doc.set("db", "retries", 5)
    >>> print(inifile.dumps(doc), end="")
    [db]
    user = admin
    retries = 5

The package is split into four modules:

* :mod:`inifile.lexer` turns text into line tokens,
* :mod:`inifile.parser` builds an :class:`IniDocument` from those tokens,
* :mod:`inifile.document` holds the in-memory model,
* :mod:`inifile.writer` serialises a document back to text.
"""

from .document import IniDocument, Section
from .lexer import ParseError
from .parser import load, loads
from .writer import dump, dumps

__all__ = [
    "IniDocument",
    "ParseError",
    "Section",
    "dump",
    "dumps",
    "load",
    "loads",
]

__version__ = "0.3.1"
