use verscmp::{Identifier, Version};

#[test]
fn parses_a_release() {
    let v = Version::parse("1.22.3").unwrap();
    assert_eq!((v.major, v.minor, v.patch), (1, 22, 3));
    assert!(!v.is_prerelease());
}

#[test]
fn parses_prerelease_and_build() {
    let v = Version::parse("2.0.0-rc.1+build.5").unwrap();
    assert_eq!(v.pre, vec![Identifier::AlphaNumeric("rc".into()), Identifier::Numeric(1)]);
    assert_eq!(v.build, vec!["build".to_string(), "5".to_string()]);
}

#[test]
fn rejects_leading_zeros() {
    assert!(Version::parse("01.2.3").is_err());
    assert!(Version::parse("1.2.3-rc.01").is_err());
}

#[test]
fn rejects_missing_parts() {
    let err = Version::parse("1.2").unwrap_err();
    assert!(err.reason.contains("MAJOR.MINOR.PATCH"), "{err}");
}

#[test]
fn rejects_empty_identifiers() {
    assert!(Version::parse("1.2.3-rc..1").is_err());
    assert!(Version::parse("1.2.3+").is_err());
}

#[test]
fn displays_as_parsed() {
    for text in ["0.1.0", "1.0.0-alpha.1", "3.2.1-x-y.7+meta.data"] {
        assert_eq!(Version::parse(text).unwrap().to_string(), text);
    }
}
