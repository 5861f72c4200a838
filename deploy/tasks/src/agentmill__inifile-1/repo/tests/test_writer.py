import inifile


def test_dumps_layout():
    doc = inifile.loads("[a]\nx=1\n[b]\ny = two words\n")
    assert inifile.dumps(doc) == "[a]\nx = 1\n\n[b]\ny = two words\n"


def test_roundtrip_multiline_and_quotes():
    text = '[s]\nlist = one\n    two\npad = "  spaced  "\nsemi = "a ;b"\n'
    doc = inifile.loads(text)
    again = inifile.loads(inifile.dumps(doc))
    assert again.to_dict() == doc.to_dict()


def test_empty_document():
    assert inifile.dumps(inifile.IniDocument()) == ""
