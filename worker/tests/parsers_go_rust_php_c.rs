//! The Go, Rust, PHP and C/C++ log parsers against the `swebench` package itself, output for
//! output: `parse_log_gotest`, `parse_log_cargo`, `parse_log_phpunit`, `parse_log_redis`,
//! `parse_log_jq`, `parse_log_doctest`, `parse_log_micropython_test` and `parse_log_googletest`,
//! in both generations (4.1.0 has them all), read a shared corpus and must give the reference's
//! status map (keys, statuses and order) or raise where it raises.
//!
//! The corpus: logs written here in each tool's format for every branch of every parser; real
//! `cargo test` output of a tiny crate built here offline (plain, `--nocapture`, coloured,
//! quiet); doctest XML reports, well-formed and not (expat's rules, namespaces included), a few
//! hundred seeded mutations of one and a few hundred seeded documents from a small XML grammar;
//! seeded token soup (random lines of the tokens the parsers look for); hostile input (empty,
//! `\r\n`, one token, Python's whitespace, long lines); CRLF variants; and the 68 real SWE-bench
//! harness logs of `/work/shared/harness-logs/cases.jsonl`, read in place, as text no parser here
//! was written for. `AGENTMILL_PARSER_SOUP`, `AGENTMILL_DOCTEST_MUTATIONS` and
//! `AGENTMILL_DOCTEST_GRAMMAR` raise the seeded counts for a longer soak.

mod reference_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use agentmill_worker::grading::parsers::{self, Generation, ParseContext};
use reference_support::{Reference, diff_maps, workspace};
use serde_json::Value;

/// The parsers under test, in the 5.x registry's order (C, Go, PHP, Rust).
const PARSERS: &[&str] = &[
    "parse_log_redis",
    "parse_log_jq",
    "parse_log_doctest",
    "parse_log_micropython_test",
    "parse_log_googletest",
    "parse_log_gotest",
    "parse_log_phpunit",
    "parse_log_cargo",
];

/// The parsers swebench 4.1.0 lacks (it has them all).
const ONLY_V5: &[&str] = &[];

#[derive(Clone, Debug)]
struct Log {
    label: String,
    text: String,
}

impl Log {
    fn new(label: impl Into<String>, text: impl Into<String>) -> Log {
        Log { label: label.into(), text: text.into() }
    }
}

#[derive(Default, Debug)]
struct Tally {
    compared: usize,
    nonempty: BTreeMap<String, usize>,
    raised: BTreeMap<String, usize>,
    failures: Vec<String>,
}

/// Every log through every parser in `names`, ours and the reference's, in `generation`.
fn compare(generation: Generation, names: &[&str], logs: &[Log]) -> Tally {
    let mut reference = Reference::start(generation);
    let mut tally = Tally::default();
    let ctx = ParseContext { instance_id: "owner__repo-1", version: "1.0", repo: "owner/repo" };
    for &name in names {
        let lacks = !reference.has(name);
        let expected_lack = generation == Generation::V4 && ONLY_V5.contains(&name);
        assert_eq!(lacks, expected_lack, "swebench {} {} {name}", reference.version, if lacks { "lacks" } else { "has" });
        if lacks {
            continue;
        }
        for log in logs {
            let ours = parsers::parse(name, &log.text, &ctx, generation).expect("agentmill serves the name");
            let (theirs, unknown) = reference.parse_counted(name, &log.text, ctx.instance_id, ctx.version, ctx.repo);
            assert_eq!(unknown, 0, "{name} on {}: these parsers only write the five statuses", log.label);
            tally.compared += 1;
            match (ours, theirs) {
                (Ok(ours), Ok(theirs)) => {
                    if !theirs.is_empty() {
                        *tally.nonempty.entry(name.to_string()).or_default() += 1;
                    }
                    if let Some(d) = diff_maps(&ours, &theirs, true) {
                        tally.failures.push(format!("{name} on {}: {d}", log.label));
                    }
                }
                (Err(ours), Err(theirs)) => {
                    assert!(theirs.starts_with("ParseError"), "{name} on {}: the reference raised something unexpected: {theirs} (ours: {ours})", log.label);
                    *tally.raised.entry(name.to_string()).or_default() += 1;
                }
                (Ok(ours), Err(theirs)) => tally.failures.push(format!("{name} on {}: the reference raised {theirs}; ours gave {} entries", log.label, ours.len())),
                (Err(ours), Ok(theirs)) => tally.failures.push(format!("{name} on {}: ours raised {ours}; the reference gave {} entries", log.label, theirs.len())),
            }
        }
    }
    tally
}

fn assert_identical(what: &str, generation: Generation, tally: &Tally) {
    eprintln!("{what} ({generation:?}): {} comparisons, {} differ; raised: {:?}", tally.compared, tally.failures.len(), tally.raised);
    assert!(
        tally.failures.is_empty(),
        "{what} ({generation:?}): {} of {} comparisons differ:\n{}",
        tally.failures.len(),
        tally.compared,
        tally.failures.iter().take(25).cloned().collect::<Vec<_>>().join("\n")
    );
}

fn crlf_variants(logs: &[Log]) -> Vec<Log> {
    logs.iter().filter(|l| l.text.contains('\n')).map(|l| Log::new(format!("{} (CRLF)", l.label), l.text.replace('\n', "\r\n"))).collect()
}

// ---------------------------------------------------------------------------------------------
// Logs written here, per tool.

fn go_logs() -> Vec<Log> {
    vec![
        Log::new(
            "go test -v",
            "=== RUN   TestAdd\n--- PASS: TestAdd (0.00s)\n=== RUN   TestSub\n    sub_test.go:12: got 1, want 2\n--- FAIL: TestSub (0.01s)\n\
             === RUN   TestSkip\n    skip_test.go:5: not on this OS\n--- SKIP: TestSkip (0.00s)\n\
             === RUN   TestTable\n=== RUN   TestTable/empty_input\n=== RUN   TestTable/with_(parens)\n=== PAUSE TestTable/with_(parens)\n=== CONT  TestTable/with_(parens)\n\
             --- FAIL: TestTable (0.02s)\n    --- PASS: TestTable/empty_input (0.00s)\n    --- FAIL: TestTable/with_(parens) (0.01s)\n        --- SKIP: TestTable/with_(parens)/deep (0.00s)\n\
             FAIL\nFAIL\tgithub.com/x/y\t0.034s\nok  \tgithub.com/x/z\t(cached)\n--- PASS: TestAdd (0.00s)\n--- FAIL: TestAdd (0.00s)\n",
        ),
        Log::new(
            "go test edge lines",
            "--- PASS: TestX (1.5s) (extra)\n--- PASS: Test With Spaces (0.00s)\n--- PASS: TestNoDuration\n--- PASS: TestEmpty ()\n--- PASS:  (0.00s)\n\
             --- PASS: T ( )\n--- BENCH: BenchmarkX (0.00s)\n---  PASS: TestTwoSpaces (0.00s)\n--- pass: TestLower (0.00s)\n--- PASS: TestTrailing (0.00s) \n\
             \t--- FAIL: TestTab (0.00s)\n--- PASS: TestCR (0.00s)\r\n--- PASS: Test\x1c(0.00s)\n\x1c--- PASS: TestSep (0.00s)\x1c\n--- SKIP: TestÜñí (0.00s)\n\
             --- PASS: TestA (0.00s)--- PASS: TestB (0.00s)\n--- FAIL: TestNested (0.00s) (0.01s)\n",
        ),
    ]
}

fn cargo_logs() -> Vec<Log> {
    vec![
        Log::new(
            "cargo test",
            "   Compiling x v0.1.0 (/x)\n    Finished `test` profile [unoptimized + debuginfo] target(s) in 0.5s\n     Running unittests src/lib.rs (target/debug/deps/x-1)\n\n\
             running 6 tests\ntest tests::passes ... ok\ntest tests::fails ... FAILED\ntest tests::ignored ... ignored\ntest tests::ignored_reason ... ignored, not yet\n\
             test tests::panics - should panic ... ok\ntest tests::bench ... bench:         100 ns/iter (+/- 5)\n\n\
             failures:\n\n---- tests::fails stdout ----\nthread 'tests::fails' panicked at src/lib.rs:10:5\n\nfailures:\n    tests::fails\n\n\
             test result: FAILED. 2 passed; 1 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.00s\n\n\
             Doc-tests x\n\nrunning 1 test\ntest src/lib.rs - add (line 3) ... ok\n\ntest result: ok. 1 passed; 0 failed\n",
        ),
        Log::new(
            "cargo edge lines",
            "test  spaced  ...  ok\ntest\ttabbed\t...\tok\ntest x ...ok\ntest x... ok\ntest x ... ok \n  test indented ... ok\ntest x ... OK\ntest x ... failed\n\
             test x ... FAILED!\ntest x ... ok\r\ntest y ... FAILED\x1c\ntest\x1cz\x1c...\x1cok\ntest\u{a0}w ... ok\ntest ü ... ok\ntest x ... ok_2\n\
             test x ... ok ok\ntest a b ... ok\ntest ... ... ok\ntest x ... ... ok\ntest x ... FAILED\ntest x ... ok\ntest  ... ok\ntests x ... ok\n\
             test x ... \x1b[32mok\x1b[0m\ntest x ... ok\u{2028}\ntest x ... ok\u{85}\ntest 𝔵 ... ok\ntest x ... ٣\n",
        ),
    ]
}

fn phpunit_logs() -> Vec<Log> {
    vec![
        Log::new(
            "phpunit --testdox",
            "PHPUnit 10.5.20 by Sebastian Bergmann and contributors.\n\nRuntime:       PHP 8.3.7\n\n\
             ✔ Before any suite\n\
             ..F.S                                                               5 / 5 (100%)\n\nTime: 00:00.012, Memory: 8.00 MB\n\n\
             Calculator (Tests\\Unit\\Calculator)\n ✔ Adds two numbers\n ✘ Divides by zero\n   ┐\n   ├ Failed asserting that false is true.\n   │\n   │ /app/tests/CalculatorTest.php:20\n   ┴\n\
             ↩ Skipped thing\n ✔ Adds with data set \"one two\"\n ✔ Adds with data set #0\n\
             Array Utils (Tests\\Unit\\ArrayUtils)\n ✔ Flattens (nested) arrays\n✘Glued\n \t ✔  spaced  \n ✔\n\
             FAILURES!\nTests: 5, Assertions: 5, Failures: 1, Skipped: 1.\n",
        ),
        Log::new(
            "phpunit suite-line edges",
            "éclair (Tests\\Éclair)\n ✔ unicode suite\n(paren) (Tests\\Paren)\n ✔ not a suite\n_under (x)\n ✔ a\n1digit (x)\n ✔ b\n\
             A (B) (C)\n ✔ c\nA ()\n ✔ d\nA (x)\r\n ✔ e\r\nA(x)\n ✔ f\n A (x)\n ✔ g\nA  (x)\n ✔ h\nA (x) \n ✔ i\nA (x)y\n ✔ j\n\
             ²sup (x)\n ✔ k\n\u{301}mark (x)\n ✔ l\n‿tie (x)\n ✔ m\nⒶcircled (x)\n ✔ n\nΣ (x)\n ✔ o\n\x1c ✔ p\n\u{a0}✔ q\n ✔\u{3000}r\n ✗ s\n ✓ t\n",
        ),
    ]
}

fn c_logs() -> Vec<Log> {
    vec![
        Log::new(
            "redis",
            "[ready]: 1234\n[ok]: PING (1 ms)\n[ok]: SET and GET (12 ms)\n[err]: Some test in tests/unit/foo.tcl\n[err]: Plain failure\n[skip]: Skipped test\n\
             [ignore]: Ignored test\n[ok]: name with (parens) (3 ms)\n[ok]: no space duration (12ms)\n[ok]: seconds (2 s)\n[ok]: odd duration (abc)\n\
             [ok]: odd unit (12 us)\n[ok]:nospace\n[ok]:\ttab\n[ok]: \n[ok]:  two spaces\n[err]: a  in   tests/x.tcl\n[err]: a in b in c.tcl\n[err]: in x\n\
             [err]: trailing in \n[err]: x in y (3 ms)\n[ok]: arabic (١٢ ms)\n[ok]: sep\x1c(3 ms)\n  [ok]: indented (1 ms)\n[OK]: upper\n[ok] : spaced\n\
             [err]: x\x1cin\x1cfile\n[err]: dup\n[ok]: dup\n[ok]: ()\n[ok]: x ( 3 ms)\n[ok]: x (3  ms)\n[ok]: x (3 mss)\n[ok]: x (3 m s)\n",
        ),
        Log::new(
            "jq",
            "PASS: tests/jqtest\nFAIL: tests/shtest\nXFAIL: tests/x\n  PASS: indented\nPASS:tight\nPASS:\ttab\nPASS: \nPASS:  two\nFAIL: x y z\n\
             ERROR: tests/e\nSKIP: tests/s\npass: lower\nPASS: dup\nFAIL: dup\nPASS:\x1csep\nPASS:\u{a0}nbsp\n# PASS:  1\n",
        ),
        Log::new(
            "micropython",
            "pass  basics/0prelim.py\nFAIL  basics/fail.py\nskip  basics/skip.py\npass\tbasics/tab.py\npassbasics/glued.py\npass \nFAIL\n\
             skipped x\n  pass  indented.py\nPASS x\npass  with spaces in.py\npass\x1cfs.py\nFAIL  dup.py\npass  dup.py\n\
             298 tests performed (11183 individual testcases)\n297 tests passed\n1 tests failed: fail\n",
        ),
        Log::new(
            "googletest",
            "[==========] Running 3 tests from 1 test suite.\n[----------] 3 tests from Suite\n[ RUN      ] Suite.Pass\n[       OK ] Suite.Pass (0 ms)\n\
             [ RUN      ] Suite.Fail\nfoo.cc:10: Failure\n[  FAILED  ] Suite.Fail (1 ms)\n\
             [  FAILED  ] Param/Suite.Test/0, where GetParam() = 4 (0 ms)\n[==========] 3 tests from 1 test suite ran. (1 ms total)\n\
             [  PASSED  ] 1 test.\n[  FAILED  ] 2 tests, listed below:\n[  FAILED  ] Suite.Fail\n\n 2 FAILED TESTS\n\
             [OK] tight (1 ms)\n[  OK  ]  two spaces (1 ms)\n[ OK ] x(1 ms)\nprefix [ OK ] after prefix (1 ms)\n[ OK ] a (1) [ FAILED ] b (2)\n\
             [ OK ] a (1) (2)\n[ OK ]  (1 ms)\n[ OK ] x ()\n[\x1cOK\x1c]\x1cx\x1c(1)\n[ OK ] x (1)\r\n[  SKIPPED ] Suite.Skip (0 ms)\n[ OK ] dup (1)\n[ FAILED ] dup (1)\n",
        ),
    ]
}

/// A realistic doctest XML report (nlohmann/json's `-s -r=xml`).
const DOCTEST_REPORT: &str = r#"[doctest] doctest version is "2.4.11"
[doctest] run with "--help" for options
<?xml version="1.0" encoding="UTF-8"?>
<doctest binary="/json/build/tests/test-deserialization" version="2.4.11">
  <Options order_by="file" rand_seed="0" first="0" last="4294967295" abort_after="0" subcase_filter_levels="2147483647" case_sensitive="false" no_throw="false" no_skip="false"/>
  <TestSuite>
    <TestCase name="deserialization" filename="/json/tests/src/unit-deserialization.cpp" line="187">
      <SubCase name="successful deserialization" filename="/json/tests/src/unit-deserialization.cpp" line="189">
        <SubCase name="stream" filename="/json/tests/src/unit-deserialization.cpp" line="191">
          <Expression success="true" type="CHECK" filename="/json/tests/src/unit-deserialization.cpp" line="196">
            <Original>
              j == json({"foo", 1, 2, 3, false, {{"one", 1}}})
            </Original>
          </Expression>
        </SubCase>
      </SubCase>
      <SubCase name="contiguous containers &amp; &lt;friends&gt;" filename="/json/tests/src/unit-deserialization.cpp" line="300">
        <SubCase name="directly" filename="/json/tests/src/unit-deserialization.cpp" line="302">
          <Expression success="false" type="CHECK" filename="/json/tests/src/unit-deserialization.cpp" line="305">
            <Original>
              json::parse(s) == json(true)
            </Original>
            <Expanded>
              false == true
            </Expanded>
          </Expression>
        </SubCase>
      </SubCase>
      <OverallResultsAsserts successes="2" failures="1" test_case_success="false"/>
    </TestCase>
    <TestCase name="Unicode (1/5)" filename="/json/tests/src/unit-unicode1.cpp" line="38" skipped="false">
      <SubCase name="\\uxxxx sequences" filename="/json/tests/src/unit-unicode1.cpp" line="45"/>
      <SubCase name="line&#10;break and&#9;tab and literal	tab" filename="x" line="1">
        <Expression success="true"/>
        <Expression success="TRUE"/>
      </SubCase>
      <OverallResultsAsserts successes="2218" failures="0" test_case_success="true"/>
    </TestCase>
    <TestCase name="no subcases" filename="x" line="1">
      <Expression success="false"/>
    </TestCase>
    <TestCase filename="nameless" line="2">
      <SubCase filename="nameless too" line="3"/>
    </TestCase>
    <TestCase name="deserialization" filename="again" line="9">
      <SubCase name="stream" line="1"><Exception crash="false">boom</Exception></SubCase>
      <SubCase name="successful deserialization"><Expression success="false"/></SubCase>
    </TestCase>
  </TestSuite>
  <!-- a comment -->
  <?pi with data?>
  <![CDATA[ <not> & markup ]]>
  <OverallResultsAsserts successes="2220" failures="1"/>
  <OverallResultsTestCases successes="1" failures="1"/>
</doctest>
[doctest] Status: FAILURE!
"#;

/// doctest documents: structure, namespaces and everything expat rejects.
fn doctest_logs() -> Vec<Log> {
    let mut logs = vec![
        Log::new("doctest report", DOCTEST_REPORT),
        Log::new("doctest: two reports, the first one read", format!("{DOCTEST_REPORT}\n{}", DOCTEST_REPORT.replace("deserialization", "second"))),
        Log::new("doctest: no report", "[doctest] run with \"--help\" for options\nall good\n"),
        Log::new("doctest: an #include before the report", format!("In file included from x.cpp:1:\n#include <doctest/doctest.h>\n{DOCTEST_REPORT}")),
        Log::new("doctest: start without end", "<doctest binary=\"x\">\n<TestCase name=\"a\"><SubCase name=\"b\"/></TestCase>\n"),
        Log::new("doctest: end before start", "</doctest>\n<doctest></doctest>\n"),
        Log::new("doctest: 9 characters", "<doctest>"),
        Log::new("doctest: empty root", "<doctest></doctest>"),
        Log::new("doctest: self-closed root then end", "<doctest/></doctest>"),
        Log::new("doctest: self-closed root, comment, end", "<doctest/><!-- c --></doctest>"),
        Log::new("doctest: another root name", "<doctestX></doctest>"),
        Log::new("doctest: prefixed root", "<doctest:x xmlns:doctest=\"u\"></doctest>"),
        Log::new("doctest: nested doctest", "<doctest><doctest></doctest></doctest>"),
        Log::new("doctest: unicode", "<doctest><TestCase name=\"ü 😀 ✓\"><SubCase name=\"\u{a0}\u{2028}\"/></TestCase></doctest>"),
        Log::new(
            "doctest: nested test cases and subcases",
            "<doctest><TestCase name=\"outer\"><SubCase name=\"s1\"><TestCase name=\"inner\"><SubCase name=\"s2\"><Expression success=\"false\"/></SubCase></TestCase></SubCase>\
             <SubCase name=\"s1\"><Expression success=\"true\"/></SubCase></TestCase><SubCase name=\"orphan\"/><TestCase name=\"inner\"><SubCase name=\"s2\"/></TestCase></doctest>",
        ),
        Log::new(
            "doctest: namespaces",
            "<doctest xmlns:p=\"urn:p\"><p:TestCase name=\"prefixed\"><SubCase name=\"s\"/></p:TestCase><TestCase p:name=\"pn\" name=\"plain\"><SubCase name=\"s\" p:x=\"1\"/>\
             <p:SubCase name=\"ps\"/><SubCase xmlns=\"urn:d\" name=\"default-ns\"/><SubCase xmlns=\"\" name=\"reset\"/></TestCase>\
             <TestCase xmlns=\"urn:d\" name=\"in-default\"><SubCase name=\"x\"/><SubCase xmlns=\"\" name=\"y\"/></TestCase>\
             <TestCase name=\"xml-lang\" xml:lang=\"en\"><SubCase name=\"z\" xmlns:q=\"urn:q\" q:success=\"1\"><Expression q:success=\"true\" success=\"false\"/></SubCase></TestCase></doctest>",
        ),
        Log::new("doctest: default namespace on the root", "<doctest xmlns=\"urn:d\"><TestCase name=\"a\"><SubCase name=\"b\"/></TestCase></doctest>"),
        Log::new("doctest: prefix declared after its use", "<doctest><TestCase p:x=\"1\" xmlns:p=\"u\" name=\"t\"><SubCase name=\"s\"/></TestCase></doctest>"),
    ];
    // Snippets placed inside a subcase, each its own document.
    let content = [
        "", "text", "]]", "]]>", "<![CDATA[ ]]> ]]>", "<![CDATA[x]]]>", "<![CDATA[<&]]>", "<![cdata[x]]>", "<!-- x -- y -->", "<!-- x --->", "<!---->", "<!-- - -->",
        "<!--x->", "<?pi x?>", "<?xml x?>", "<?XmL x?>", "<?xmlfoo x?>", "<?pi?>", "<?pi\n?>", "<?pi:x y?>", "<? pi?>", "<?p x?y?>", "<?p?x?>", "<?p\u{85}x?>",
        "<!DOCTYPE a>", "<!x>", "&#x1;", "\x01", "\u{0}", "\u{fffe}", "\u{ffff}", "\u{fdd0}", "\u{1fffe}", "\u{10ffff}", "😀", "&", "&amp", "& x;", "&#;", "&#x;",
        "&#65", "&#1114111;", "&#1114112;", "&#99999999999999999999;", "&#x0000041;", "&#X41;", "&#xD800;", "&#xFFFE;", "&#0;", "&#9;&#10;&#13;", "&LT;", "&lt",
        "&foo;", "&a:b;", "&amp;&lt;&gt;&apos;&quot;", "<a></b>", "<a><b></a></b>", "<a>", "<a x/>", "<a x=/>", "<a x=\"1\" /x>", "<a/ >", "<a\n/>", "< a/>",
        "<a></ a>", "<a></a >", "<a></a\n>", "<a:b xmlns:a=\"u\"/>", "<a:b/>", "<a:b:c xmlns:a=\"u\"/>", "<a: xmlns:a=\"u\"/>", "<:a/>", "<a :b=\"1\"/>",
        "<a b:=\"1\"/>", "<a b:c=\"1\"/>", "<a xmlns:b=\"\"/>", "<a xmlns=\"\"/>", "<a xmlns:xml=\"http://www.w3.org/XML/1998/namespace\"/>", "<a xmlns:xml=\"u\"/>",
        "<a xmlns:x=\"http://www.w3.org/XML/1998/namespace\"/>", "<a xmlns:xmlns=\"u\"/>", "<a xmlns:x=\"http://www.w3.org/2000/xmlns/\"/>",
        "<a xmlns=\"http://www.w3.org/2000/xmlns/\"/>", "<a xmlns=\"http://www.w3.org/XML/1998/namespace\"/>", "<a xmlns=\"http://www.w3.org/2000/xmlns\"/>",
        "<a xml:lang=\"en\"/>", "<a xmlns:p=\"u\" xmlns:q=\"u\" p:x=\"1\" q:x=\"2\"/>", "<a x=\"1\" x=\"2\"/>", "<a xmlns=\"u\" xmlns=\"v\"/>", "<a x=\"1\"y=\"2\"/>",
        "<a x=\"<\"/>", "<a x=\">\"/>", "<a x=\"&foo;\"/>", "<a x=\"&#0;\"/>", "<a x='1\"'/>", "<a x=1/>", "<a x = \"1\" />", "<a:1 xmlns:a=\"u\"/>", "<a:-b xmlns:a=\"u\"/>",
        "<a xmlns:p=\"u}v\"/>", "<a xmlns=\"u}v\"/>", "<a xmlns=\"u{v\"/>", "<xml:a/>", "<xmlns/>", "<xmlns:a/>", "<a xmlns:xmlns=\"\"/>", "<a xmlns:p=\"u\" xmlns:p=\"u\"/>",
        "<a xmlnsfoo=\"1\"/>", "<a xmlns:XML=\"u\"/>", "<a\u{85}/>", "<a\u{2028}/>", "<a x=\"1\"\u{85}/>", "<a\u{a0}x=\"1\"/>", "<a \u{3000}/>", "<a·/>", "<·a/>", "<a x·=\"1\"/>",
        "<Ĳ/>", "<aĲ/>", "<ʻ/>", "<a\u{300}/>", "<\u{300}/>", "<a٣/>", "<٣/>", "<𝔘/>", "<a𝔘/>", "<中文/>", "<a-b.c_d/>", "<_/>", "<-a/>", "<.a/>", "<1a/>",
        "<a b=\"x\" xmlns=\"u\"/>", "<a xmlns:p=\"u\"><p:b/></a>", "<a><p:b xmlns:p=\"u\"/><p:c/></a>", "<a xmlns:p=\"u\"><b xmlns:p=\"v\"><p:c/></b></a>",
        "<a xmlns:p=\"u\"><p:b xmlns:p=\"\"/></a>", "<a\tb=\"1\"/>", "<a\rb=\"1\"/>", "<a b=\"1\"\r/>", "<a b=\"1\"\u{c}/>", "<a/\n>", "\r\n", "\r", "<a x=\"\u{1}\"/>",
        "<!--\u{1}-->", "<![CDATA[\u{1}]]>", "<?pi \u{1}?>", "\u{7f}\u{80}\u{9f}", "\u{85}\u{2028}", "<a>unclosed", "</SubCase>", "</SubCase></TestCase></doctest><x>",
    ];
    for (i, snippet) in content.iter().enumerate() {
        logs.push(Log::new(
            format!("doctest content snippet {i}: {snippet:?}"),
            format!("log before\n<doctest binary=\"b\">\n<TestCase name=\"tc{i}\"><SubCase name=\"sc\">{snippet}<Expression success=\"true\"/></SubCase></TestCase>\n</doctest>\nafter\n"),
        ));
    }
    // Attribute values as the parser reads them: entities, normalisation, quotes.
    let names = [
        "plain", "a &lt; b &amp;&amp; c", "line1&#10;line2", "tab\there", "cr\rlf\r\n.", "x\r\ry", "&#x20;&#32;", "&quot;&apos;", "'single'", "é&#233;&#x1F600;", "\u{85}",
        "]]>", ">", "&#13;&#10;", "a\u{a0}b",
    ];
    for (i, name) in names.iter().enumerate() {
        logs.push(Log::new(
            format!("doctest name {i}: {name:?}"),
            format!("<doctest><TestCase name=\"{name}\"><SubCase name='{name}'><Expression success=\"true\"/></SubCase></TestCase></doctest>"),
        ));
    }
    // Success values: only exactly "true" passes.
    for (i, success) in ["true", "false", "TRUE", " true", "true ", "", "1", "tr&#117;e", "t\u{301}rue"].iter().enumerate() {
        logs.push(Log::new(
            format!("doctest success {i}: {success:?}"),
            format!("<doctest><TestCase name=\"t\"><SubCase name=\"s{i}\"><Expression success=\"{success}\"/></SubCase></TestCase></doctest>"),
        ));
    }
    // After the root element: only white space, comments and PIs.
    for (i, tail) in [" \n\t\r", "<!-- c -->", "<?p?>", "x", "<b/>", "<![CDATA[x]]>", "&amp;", "\u{c}", "\u{a0}", "<?xml x?>"].iter().enumerate() {
        logs.push(Log::new(format!("doctest after the root {i}: {tail:?}"), format!("<doctest><TestCase name=\"t\"><SubCase name=\"s\"/></TestCase>\n<doctest/>{tail}</doctest>")));
    }
    logs
}

/// Seeded mutations of the report: inserted markup fragments, deletions, swaps.
fn doctest_mutations() -> Vec<Log> {
    const FRAGMENTS: &[&str] = &[
        "<", ">", "&", "&amp;", "&#10;", "\"", "'", "/", "</SubCase>", "<SubCase name=\"m\">", "<SubCase name=\"m\"/>", "<Expression success=\"false\"/>",
        "<TestCase name=\"m\">", "</TestCase>", "<!--", "-->", "]]>", "<![CDATA[", "<?", "?>", "=", " ", "\n", "xmlns=\"u\"", "xmlns:p=\"u\"", "p:", ":", "\u{1}",
        "\u{fffe}", "é", "\r\n", "name=\"dup\"", "<doctest>", "</doctest>", "xmlns:xml=\"u\"", "&#0;", "xml:", "<!DOCTYPE x>", "<?xml ?>", "\t", "&lt;",
        "success=\"true\"", "-", "--", "]", "[", "?", "!", "#", ";", "x",
    ];
    let report = DOCTEST_REPORT.as_bytes();
    let body_start = DOCTEST_REPORT.find("<doctest").unwrap_or(0);
    let mut seed: u64 = 0x5eed_1234_abcd_0001;
    let mut next = move |n: usize| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((seed >> 33) as usize) % n.max(1)
    };
    let mut logs = Vec::new();
    let count = std::env::var("AGENTMILL_DOCTEST_MUTATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    for i in 0..count {
        let mut text = report.to_vec();
        for _ in 0..1 + next(3) {
            let at = body_start + next(text.len() - body_start);
            match next(3) {
                0 => {
                    let f = FRAGMENTS[next(FRAGMENTS.len())];
                    text.splice(at..at, f.bytes());
                }
                1 => {
                    let end = (at + 1 + next(12)).min(text.len());
                    text.drain(at..end);
                }
                _ => {
                    let f = FRAGMENTS[next(FRAGMENTS.len())];
                    let end = (at + f.len()).min(text.len());
                    text.splice(at..end, f.bytes());
                }
            }
        }
        let text = String::from_utf8_lossy(&text).into_owned();
        logs.push(Log::new(format!("doctest mutation {i}"), text));
    }
    logs
}

/// Seeded documents from a small XML grammar: names, prefixes and declarations, references,
/// comments, PIs and CDATA, mostly well-formed (`AGENTMILL_DOCTEST_GRAMMAR` sets the count).
fn doctest_grammar() -> Vec<Log> {
    // Each choice is from the safe list, one time in forty from the hostile one.
    const NAMES: (&[&str], &[&str]) = (
        &["TestCase", "SubCase", "SubCase", "Expression", "Expression", "p:TestCase", "q:SubCase", "p:Expression", "xml:x", "a", "é", "a·b", "_x", "a-b", "a.b", "Other"],
        &["xmlns:x", "Ĳ", "x:y:z", "1a", "a:", "r:x", "-a"],
    );
    const ATTRIBUTES: (&[&str], &[&str]) = (
        &["name", "name", "name", "success", "success", "success", "xmlns", "xmlns:p", "xmlns:q", "p:name", "q:success", "xml:lang", "x", "p:x"],
        &["xmlns:xmlns", "xmlns:xml", "r:x", "q:x", "xmlns:", ":x"],
    );
    const VALUES: (&[&str], &[&str]) = (
        &["true", "true", "false", "u", "v", "u", "", "a&amp;b", "&#10;", "\t", "tr&#117;e", "a b", "é", "x\r\ny", ">", "'", "\""],
        &["http://www.w3.org/XML/1998/namespace", "http://www.w3.org/2000/xmlns/", "x}y", "<", "&bogus;", "&#0;", "\u{1}"],
    );
    const TEXT: (&[&str], &[&str]) = (
        &["", "x", " ", "\n", "]]", "&amp;", "é", ">", "<!-- c -->", "<!-- - -->", "<?pi d?>", "<![CDATA[<x>]]>", "&#x10FFFF;", "\r\n"],
        &["]]>", "&bogus;", "\u{1}", "<!--x--y-->", "<?xml?>", "<![CDATA[", "&", "<", "\u{ffff}"],
    );
    fn pick(rng: &mut Lcg, (safe, hostile): (&[&'static str], &[&'static str])) -> &'static str {
        if rng.below(40) == 0 { hostile[rng.below(hostile.len())] } else { safe[rng.below(safe.len())] }
    }
    fn element(rng: &mut Lcg, depth: usize, out: &mut String) {
        let name = pick(rng, NAMES);
        out.push('<');
        out.push_str(name);
        let mut used = Vec::new();
        for _ in 0..rng.below(4) {
            let attribute = pick(rng, ATTRIBUTES);
            if used.contains(&attribute) && rng.below(8) != 0 {
                continue;
            }
            used.push(attribute);
            out.push_str([" ", " ", "\t", "\n", "\r\n", " "][rng.below(6)]);
            let quote = if rng.below(4) == 0 { '\'' } else { '"' };
            out.push_str(attribute);
            out.push('=');
            out.push(quote);
            let value = pick(rng, VALUES);
            let value = if attribute.starts_with("xmlns") && value.is_empty() && rng.below(8) != 0 { "w" } else { value };
            out.push_str(if value.contains(quote) { "q" } else { value });
            out.push(quote);
        }
        if depth == 0 || rng.below(3) == 0 {
            out.push_str("/>");
            return;
        }
        out.push('>');
        for _ in 0..rng.below(4) {
            if rng.below(2) == 0 {
                element(rng, depth - 1, out);
            } else {
                out.push_str(pick(rng, TEXT));
            }
        }
        out.push_str("</");
        out.push_str(if rng.below(40) == 0 { pick(rng, NAMES) } else { name });
        out.push_str([">", " >", "\n>"][rng.below(3)]);
    }
    let count = std::env::var("AGENTMILL_DOCTEST_GRAMMAR").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let mut rng = Lcg(0x5eed_0000_0000_0003);
    (0..count)
        .map(|i| {
            let mut doc = String::from("<doctest");
            if rng.below(8) != 0 {
                doc.push_str(" xmlns:p=\"urn:p\" xmlns:q=\"urn:q\"");
            } else {
                doc.push_str([" xmlns:p=\"u\"", " xmlns:q=\"v\"", " xmlns=\"d\"", " xmlns:p=\"u\" xmlns:q=\"u\"", " xmlns:p=\"u\" xmlns:q=\"v\""][rng.below(5)]);
            }
            doc.push('>');
            for _ in 0..1 + rng.below(3) {
                element(&mut rng, 4, &mut doc);
            }
            doc.push_str("</doctest>");
            Log::new(format!("doctest grammar {i}"), doc)
        })
        .collect()
}

fn hostile_logs() -> Vec<Log> {
    let long = "a".repeat(200_000);
    vec![
        Log::new("empty", ""),
        Log::new("one newline", "\n"),
        Log::new("CRLF only", "\r\n\r\n"),
        Log::new("one-token lines", "---\n--- PASS:\ntest\n[ok]:\nPASS:\npass\n[ OK ]\n✔\n<doctest\nok\n"),
        Log::new("lone CRs", "--- PASS: TestA (0.00s)\rtest a ... ok\r[ok]: x\rPASS: y\r"),
        Log::new("python whitespace", "\x1c--- PASS: TestA (0.00s)\x1f\n\u{a0}test b ... ok\u{3000}\n\u{85}[ok]: c\u{2028}\n\x0bPASS: d\x0c\n\u{2029}pass  e\u{1680}\n"),
        Log::new("replacement characters and NUL", "--- PASS: \u{fffd} (0.00s)\ntest \u{0} ... ok\n[ok]: \u{fffd}\u{fffd}\nPASS: \u{0}\n"),
        Log::new(
            "very long lines",
            format!("--- PASS: {long} (0.00s)\ntest {long} ... ok\n[ok]: {long} (1 ms)\n[err]: {long} in {long}\nPASS: {long}\npass  {long}\n[ OK ] {long} (1)\n{long} (x)\n ✔ {long}\n"),
        ),
        Log::new("long line of spaces", format!("[ok]: x{}(1 ms)\n[err]: x{}in{}y\n", " ".repeat(50_000), " ".repeat(50_000), " ".repeat(50_000))),
        Log::new("astral plane", "--- PASS: Test𝔘 (0.00s)\ntest 𝔘 ... ok\n[ok]: 😀\nPASS: 😀\n"),
    ]
}

fn constructed_logs() -> Vec<Log> {
    let mut logs = go_logs();
    logs.extend(cargo_logs());
    logs.extend(phpunit_logs());
    logs.extend(c_logs());
    logs.extend(hostile_logs());
    logs.extend(crlf_variants(&logs));
    let all = logs.iter().map(|l| l.text.as_str()).collect::<Vec<_>>().join("\n");
    logs.push(Log::new("all of the above, joined", all));
    logs
}

fn check_constructed(generation: Generation) {
    let logs = constructed_logs();
    let tally = compare(generation, PARSERS, &logs);
    assert_identical("constructed logs", generation, &tally);
    for name in PARSERS.iter().filter(|n| **n != "parse_log_doctest") {
        assert!(tally.nonempty.get(*name).copied().unwrap_or(0) > 0, "{name} read nothing from the constructed logs");
    }
}

#[test]
fn constructed_logs_v4() {
    check_constructed(Generation::V4);
}

#[test]
fn constructed_logs_v5() {
    check_constructed(Generation::V5);
}

fn check_doctest(generation: Generation) {
    let mut logs = doctest_logs();
    logs.extend(crlf_variants(&logs));
    logs.extend(doctest_mutations());
    logs.extend(doctest_grammar());
    let tally = compare(generation, &["parse_log_doctest"], &logs);
    assert_identical("doctest documents", generation, &tally);
    let read = tally.nonempty.get("parse_log_doctest").copied().unwrap_or(0);
    let raised = tally.raised.get("parse_log_doctest").copied().unwrap_or(0);
    assert!(read > 100 && raised > 100, "the doctest corpus reads and raises: {read} read, {raised} raised");
}

#[test]
fn doctest_xml_v4() {
    check_doctest(Generation::V4);
}

#[test]
fn doctest_xml_v5() {
    check_doctest(Generation::V5);
}

// ---------------------------------------------------------------------------------------------
// Token soup: seeded random lines of the tokens the parsers look for, in any order.

/// A seeded generator (an LCG: the same logs on every machine).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}

const TOKENS: &[&str] = &[
    "--- ", "PASS", "FAIL", "SKIP", ": ", "(0.00s)", "(", ")", "test ", "test", "...", " ... ", "ok", "FAILED", "ignored", "✔", "✘", "↩", " ✔ ", "[ok]:", "[err]:",
    "[skip]:", "[ignore]:", " in ", "(1 ms)", "(12ms)", "ms", "s", "PASS:", "FAIL:", "pass", "skip", "pass  ", "[ OK ]", "[  FAILED  ]", "[", "]", " ", " ", " ",
    "\t", "\x1c", "\u{a0}", "\r", "Suite", "é", "1", "٣", "_", "x", "y.tcl", "Name (Cls)", "<doctest>", "</doctest>", "<TestCase name=\"t\">", "</TestCase>",
    "<SubCase name=\"s\"/>", "\n",
];

/// `count` logs of up to 40 lines of up to 12 tokens (`AGENTMILL_PARSER_SOUP` sets `count`).
fn token_soup(seed: u64, default_count: usize) -> Vec<Log> {
    let count = std::env::var("AGENTMILL_PARSER_SOUP").ok().and_then(|v| v.parse().ok()).unwrap_or(default_count);
    let mut rng = Lcg(seed);
    (0..count)
        .map(|i| {
            let mut text = String::new();
            for _ in 0..1 + rng.below(40) {
                for _ in 0..rng.below(13) {
                    text.push_str(TOKENS[rng.below(TOKENS.len())]);
                }
                text.push('\n');
            }
            Log::new(format!("token soup {i} (seed {seed:#x})"), text)
        })
        .collect()
}

#[test]
fn token_soup_v4_and_v5() {
    let logs = token_soup(0x5eed_0000_0000_0002, 150);
    for generation in [Generation::V4, Generation::V5] {
        let tally = compare(generation, PARSERS, &logs);
        assert_identical("token soup", generation, &tally);
    }
}

// ---------------------------------------------------------------------------------------------
// Real `cargo test` output of a tiny crate built here.

const CRATE_LIB: &str = r#"//! A crate for the parser's tests.

/// Adds.
///
/// ```
/// assert_eq!(tiny::add(1, 2), 3);
/// ```
///
/// ```should_panic
/// assert_eq!(tiny::add(1, 2), 4);
/// ```
pub fn add(a: i32, b: i32) -> i32 {
    a + b
}

#[cfg(test)]
mod tests {
    #[test]
    fn passes() {
        assert_eq!(super::add(1, 1), 2);
    }

    #[test]
    fn fails() {
        assert_eq!(1, 2, "one - two");
    }

    #[test]
    #[ignore]
    fn ignored() {}

    #[test]
    #[ignore = "not yet"]
    fn ignored_with_reason() {}

    #[test]
    #[should_panic]
    fn panics() {
        panic!("boom");
    }

    #[test]
    fn prints() {
        println!("test fake::line ... ok");
        println!("test other::fake ... FAILED");
    }

    mod nested {
        #[test]
        fn deep() {}
    }
}
"#;

const CRATE_INTEGRATION: &str = "#[test]\nfn integration_passes() {\n    assert_eq!(tiny::add(2, 2), 4);\n}\n\n#[test]\nfn integration_fails() {\n    assert!(false, \"no\");\n}\n";

fn cargo_runs() -> &'static [Log] {
    static LOGS: OnceLock<Vec<Log>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("src")).expect("mkdir");
        std::fs::create_dir_all(root.join("tests")).expect("mkdir");
        std::fs::write(root.join("Cargo.toml"), "[package]\nname = \"tiny\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n").expect("write");
        std::fs::write(root.join("src/lib.rs"), CRATE_LIB).expect("write");
        std::fs::write(root.join("tests/integration.rs"), CRATE_INTEGRATION).expect("write");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let runs: [(&str, &[&str]); 4] = [
            ("cargo test", &["test", "--offline", "--no-fail-fast"]),
            ("cargo test -- --nocapture --test-threads=1", &["test", "--offline", "--no-fail-fast", "--", "--nocapture", "--test-threads=1", "--include-ignored"]),
            ("cargo test -- --color always", &["test", "--offline", "--no-fail-fast", "--", "--color", "always"]),
            ("cargo test -q", &["test", "--offline", "--no-fail-fast", "-q"]),
        ];
        let logs: Vec<Log> = runs.iter().map(|(label, args)| Log::new(format!("{label} (real run)"), run_merged(&cargo, args, root))).collect();
        let first = &logs[0].text;
        assert!(first.contains("test tests::passes ... ok") && first.contains("test tests::fails ... FAILED"), "the crate's tests ran:\n{first}");
        assert!(first.contains("Doc-tests tiny"), "{first}");
        logs
    })
}

/// `PROGRAM ARGS` in `dir`, stdout and stderr merged.
fn run_merged(program: &str, args: &[&str], dir: &Path) -> String {
    let mut command = format!("exec {}", shell_quote(program));
    for a in args {
        command.push(' ');
        command.push_str(&shell_quote(a));
    }
    command.push_str(" 2>&1");
    let out = Command::new("sh")
        .arg("-c")
        .arg(&command)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env("CARGO_TERM_COLOR", "never")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .output()
        .expect("running cargo");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn check_cargo_runs(generation: Generation) {
    let mut logs = cargo_runs().to_vec();
    logs.extend(crlf_variants(&logs));
    let tally = compare(generation, PARSERS, &logs);
    assert_identical("real cargo test logs", generation, &tally);
    assert!(tally.nonempty.get("parse_log_cargo").copied().unwrap_or(0) > 0);
}

#[test]
fn cargo_test_runs_v4() {
    check_cargo_runs(Generation::V4);
}

#[test]
fn cargo_test_runs_v5() {
    check_cargo_runs(Generation::V5);
}

// ---------------------------------------------------------------------------------------------
// The real harness logs, as text these parsers were not written for.

fn harness_logs() -> Vec<Log> {
    let path = workspace().join("../shared/harness-logs/cases.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("the harness logs are missing: {} ({e})", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let row: Value = serde_json::from_str(line).expect("a case is JSON");
            Log::new(row["case_id"].as_str().unwrap_or_default(), row["log"].as_str().unwrap_or_default())
        })
        .collect()
}

#[test]
fn harness_logs_v4_and_v5() {
    let logs = harness_logs();
    assert_eq!(logs.len(), 68);
    for generation in [Generation::V4, Generation::V5] {
        let tally = compare(generation, PARSERS, &logs);
        assert_identical("harness logs", generation, &tally);
    }
}

// ---------------------------------------------------------------------------------------------
// Python's `\w` (the `regex` crate's differs), through phpunit's suite line.

#[test]
fn python_word_class_matches_the_reference() {
    let candidate = regex::Regex::new(r"\A[\w\p{L}\p{N}\p{M}\p{Pc}\p{So}]\z").expect("pattern");
    // The big uniform blocks (CJK ideographs, Hangul syllables) are sampled; the rest is whole.
    let sampled = |c: u32| matches!(c, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7A3 | 0x20000..=0x3FFFF) && !c.is_multiple_of(61);
    let mut log = String::new();
    for (i, c) in (0u32..0x11_0000).filter(|&c| !sampled(c)).filter_map(char::from_u32).filter(|c| candidate.is_match(c.encode_utf8(&mut [0; 4]))).enumerate() {
        log.push_str(&format!("{c}s{i} (x)\n ✔ t{i}\n"));
    }
    let mut spaces = String::new();
    let space = regex::Regex::new(r"\A[\s\p{Z}\p{Cc}]\z").expect("pattern");
    for (i, c) in (0u32..0x11_0000).filter_map(char::from_u32).filter(|&c| c != '\n' && space.is_match(c.encode_utf8(&mut [0; 4]))).enumerate() {
        spaces.push_str(&format!("test{c}t{i}{c}...{c}ok\n[ok]:{c}r{i}\n[err]: e{i}{c}in{c}f\n"));
    }
    let logs = vec![Log::new("every word-like character", log), Log::new("every space and control", spaces)];
    for generation in [Generation::V4, Generation::V5] {
        let tally = compare(generation, &["parse_log_phpunit", "parse_log_cargo", "parse_log_redis"], &logs);
        assert_identical("regex classes", generation, &tally);
    }
}

// ---------------------------------------------------------------------------------------------
// The registry: every Go, Rust, PHP and C name the reference has, served here, in its order.

#[test]
fn every_name_of_the_registry_is_served() {
    let python = workspace().join(".venv/bin/python");
    let out = Command::new(&python)
        .args([
            "-c",
            "from swebench.harness.log_parsers import PARSER_REGISTRY as R\n\
             print('\\n'.join(k for k, f in R.items() if f.__module__.rsplit('.', 1)[-1] in ('c', 'go', 'php', 'rust')))",
        ])
        .env_remove("PYTHONPATH")
        .output()
        .expect("running the reference's python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let registry: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    assert_eq!(registry, PARSERS, "the 5.x registry's C, Go, PHP and Rust names");
    for name in PARSERS {
        assert!(parsers::lookup(name).is_some(), "{name}");
    }
    let ours: Vec<&str> = parsers::names().filter(|n| PARSERS.contains(n)).collect();
    // mod.rs lists the languages C, Go, PHP, Rust in the registry's order too.
    assert_eq!(ours, PARSERS);
}
