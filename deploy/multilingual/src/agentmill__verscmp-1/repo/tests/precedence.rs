use verscmp::Version;

fn v(text: &str) -> Version {
    Version::parse(text).unwrap()
}

#[test]
fn numeric_parts_compare_numerically() {
    assert!(v("1.9.0") < v("1.10.0"));
    assert!(v("1.0.10") > v("1.0.9"));
}

#[test]
fn prerelease_comes_before_release() {
    assert!(v("1.0.0-alpha") < v("1.0.0"));
}

#[test]
fn alphanumeric_identifiers_compare_lexically() {
    assert!(v("1.0.0-alpha") < v("1.0.0-beta"));
    assert!(v("1.0.0-beta") < v("1.0.0-rc"));
}

#[test]
fn longer_prerelease_wins_on_equal_prefix() {
    assert!(v("1.0.0-alpha") < v("1.0.0-alpha.1"));
}

#[test]
fn build_metadata_is_ignored() {
    assert_eq!(v("1.0.0+a"), v("1.0.0+b"));
}

#[test]
fn sorts_a_list() {
    let mut list = vec![v("1.0.0"), v("0.9.0"), v("1.0.0-rc"), v("1.0.0-alpha")];
    list.sort();
    let texts: Vec<String> = list.iter().map(Version::to_string).collect();
    assert_eq!(texts, ["0.9.0", "1.0.0-alpha", "1.0.0-rc", "1.0.0"]);
}
