"""The in-memory model of an INI document."""

from collections.abc import MutableMapping
from typing import Dict, Iterator, List, Optional

TRUE_WORDS = frozenset({"1", "yes", "true", "on"})
FALSE_WORDS = frozenset({"0", "no", "false", "off"})


class Section(MutableMapping):
    """An ordered mapping of case-insensitive keys to string values."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._data: Dict[str, str] = {}

    @staticmethod
    def _norm(key: str) -> str:
        return key.strip().lower()

    def __getitem__(self, key: str) -> str:
        return self._data[self._norm(key)]

    def __setitem__(self, key: str, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"values must be str, not {type(value).__name__}")
        self._data[self._norm(key)] = value

    def __delitem__(self, key: str) -> None:
        del self._data[self._norm(key)]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._norm(key) in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"Section({self.name!r}, {self._data!r})"


class IniDocument:
    """An ordered collection of named :class:`Section` objects."""

    def __init__(self) -> None:
        self._sections: Dict[str, Section] = {}

    def sections(self) -> List[str]:
        return list(self._sections)

    def has_section(self, name: str) -> bool:
        return name in self._sections

    def add_section(self, name: str, exist_ok: bool = False) -> Section:
        if name in self._sections:
            if not exist_ok:
                raise KeyError(f"section {name!r} already exists")
            return self._sections[name]
        section = self._sections[name] = Section(name)
        return section

    def remove_section(self, name: str) -> None:
        del self._sections[name]

    def __getitem__(self, name: str) -> Section:
        return self._sections[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._sections)

    def __len__(self) -> int:
        return len(self._sections)

    def get(self, section: str, key: str, fallback: Optional[str] = None) -> Optional[str]:
        """Return the raw string value, or *fallback* when it is missing."""
        sec = self._sections.get(section)
        if sec is None or key not in sec:
            return fallback
        return sec[key]

    def getint(self, section: str, key: str, fallback: Optional[int] = None) -> Optional[int]:
        value = self.get(section, key)
        return fallback if value is None else int(value)

    def getfloat(self, section: str, key: str, fallback: Optional[float] = None) -> Optional[float]:
        value = self.get(section, key)
        return fallback if value is None else float(value)

    def getboolean(self, section: str, key: str, fallback: Optional[bool] = None) -> Optional[bool]:
        """Interpret yes/no, on/off, true/false and 1/0 (case-insensitively)."""
        value = self.get(section, key)
        if value is None:
            return fallback
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ValueError(f"not a boolean: {value!r}")

    def set(self, section: str, key: str, value: object) -> None:
        """Store ``str(value)``, creating *section* if needed."""
        self.add_section(section, exist_ok=True)[key] = str(value)

    def to_dict(self) -> Dict[str, Dict[str, str]]:
        return {name: dict(sec) for name, sec in self._sections.items()}
