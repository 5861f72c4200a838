//! The JavaScript, Java and Ruby log parsers against the `swebench` package itself, output for
//! output: every parser, in both generations (4.1.0 where it has the parser, 5.x always), reads a
//! shared corpus and must give the reference's status map (keys, statuses, order) or raise where
//! it raises. The corpus: logs written here in each tool's real format for every branch of every
//! parser, logs made at test time by the real tools on this machine (`node --test` in its TAP,
//! spec and dot reporters; `mvn` offline, with `set -x`, when it is installed), hostile input
//! (empty, `\r\n`, cut mid-line, unicode, one token), and variants of each log (CRLF, cut at
//! a third, half and two thirds, a kitchen sink of all of them).

mod reference_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use agentmill_worker::grading::parsers::{self, Generation, ParseContext};
use reference_support::{Reference, diff_maps};

/// The parsers under test, in the 5.x registry's order.
const JS: &[&str] = &[
    "parse_log_calypso",
    "parse_log_bpmn_js",
    "parse_log_carbon",
    "parse_log_eslint",
    "parse_log_grommet",
    "parse_log_highlightjs",
    "parse_log_lighthouse",
    "parse_log_next",
    "parse_log_openlayers",
    "parse_log_prismjs",
    "parse_log_quarto_cli",
    "parse_log_chart_js",
    "parse_log_marked",
    "parse_log_p5js",
    "parse_log_react_pdf",
    "parse_log_jest",
    "parse_log_jest_json",
    "parse_log_vitest",
    "parse_log_karma",
    "parse_log_tap",
    "parse_log_immutable_js",
];
const JAVA: &[&str] = &["parse_log_maven", "parse_log_ant", "parse_log_gradle_custom"];
const RUBY: &[&str] = &[
    "parse_log_minitest",
    "parse_log_cucumber",
    "parse_log_ruby_unit",
    "parse_log_rspec_transformed_json",
    "parse_log_jekyll",
];

/// The parsers swebench 4.1.0 does not have.
const ONLY_V5: &[&str] = &[
    "parse_log_bpmn_js",
    "parse_log_carbon",
    "parse_log_eslint",
    "parse_log_grommet",
    "parse_log_highlightjs",
    "parse_log_lighthouse",
    "parse_log_next",
    "parse_log_openlayers",
    "parse_log_prismjs",
    "parse_log_quarto_cli",
];

fn all_parsers() -> impl Iterator<Item = &'static str> {
    JS.iter().chain(JAVA).chain(RUBY).copied()
}

/// What a parser reads besides the log.
#[derive(Clone, Debug)]
struct Ctx {
    instance_id: String,
    version: String,
    repo: String,
}

impl Ctx {
    fn new(instance_id: &str, version: &str, repo: &str) -> Ctx {
        Ctx { instance_id: instance_id.into(), version: version.into(), repo: repo.into() }
    }
}

/// One log through one parser.
struct Case {
    parser: &'static str,
    label: String,
    log: String,
    ctx: Ctx,
}

/// The contexts a parser is run under (the instance-id and version switches where it has them),
/// and whether the whole corpus runs under each (otherwise its own logs and hostile input do).
fn contexts(parser: &str) -> Vec<(Ctx, bool)> {
    let full = ["1.0", "1.27", "9.5", "10.2", "3", "2.9", "immutable-js__immutable-js-2006", "immutable-js__immutable-js-2005", "jekyll__jekyll-9141", "jekyll__jekyll-8761"];
    let with = |ctxs: Vec<Ctx>| {
        ctxs.into_iter()
            .map(|c| {
                let f = full.contains(&c.version.as_str()) || full.contains(&c.instance_id.as_str());
                (c, f)
            })
            .collect()
    };
    match parser {
        "parse_log_next" => with(["", "1.0", "1.27", "1.27.0", " 1.27"].iter().map(|v| Ctx::new("alibaba-fusion__next-1", v, "alibaba-fusion/next")).collect()),
        "parse_log_lighthouse" => with(
            [
                "9.5", "10.0", "10.2", "3", "3.0", "2.9", "11.7", "1.0", " 10.2 ", "10.20", "1_0", "٣", "١٠.٢", "𝟙𝟘", "\u{a0}4", "nan", "inf", "-inf", "1e1", ".5",
                "", "abc", "1__0", "\x1c3", "4\u{200b}",
            ]
            .iter()
            .map(|v| Ctx::new("GoogleChrome__lighthouse-1", v, "GoogleChrome/lighthouse"))
            .collect(),
        ),
        "parse_log_immutable_js" => with(
            ["immutable-js__immutable-js-2006", "immutable-js__immutable-js-2005", "immutable-js__immutable-js-2004", "2006", "x-2005-2006", ""]
                .iter()
                .map(|id| Ctx::new(id, "", "immutable-js/immutable-js"))
                .collect(),
        ),
        "parse_log_jekyll" => with(
            [
                "jekyll__jekyll-9141",
                "jekyll__jekyll-8047",
                "jekyll__jekyll-8167",
                "jekyll__jekyll-8761",
                "jekyll__jekyll-8771",
                "jekyll__jekyll-1234",
                "x-9141-8761",
                "jekyll",
                "",
            ]
            .iter()
            .map(|id| Ctx::new(id, "", "jekyll/jekyll"))
            .collect(),
        ),
        _ => vec![(Ctx::new("owner__repo-1", "", "owner/repo"), true)],
    }
}

/// A log cut after `n` characters.
fn cut(log: &str, n: usize) -> String {
    log.chars().take(n).collect()
}

/// The log and its variants: CRLF line ends, cut at a third, a half and two thirds, without its
/// final newline.
fn variants(log: &str) -> Vec<(String, String)> {
    let n = log.chars().count();
    let mut out = vec![("as written".to_string(), log.to_string()), ("crlf".into(), log.replace('\n', "\r\n"))];
    for (what, at) in [("cut at 1/3", n / 3), ("cut at 1/2", n / 2), ("cut at 2/3", 2 * n / 3)] {
        if at > 0 && at < n {
            out.push((what.into(), cut(log, at)));
        }
    }
    if let Some(trimmed) = log.strip_suffix('\n') {
        out.push(("no final newline".into(), trimmed.to_string()));
    }
    out
}

/// Hostile input every parser reads.
fn hostile() -> Vec<(&'static str, String)> {
    let mut v: Vec<(&'static str, String)> = vec![
        ("empty", String::new()),
        ("one newline", "\n".into()),
        ("crlf only", "\r\n\r\n".into()),
        ("spaces", "   ".into()),
        ("one token", "x".into()),
        ("one check", "✓".into()),
        ("check space", "✓ ".into()),
        ("cross", "✕".into()),
        ("ok", "ok".into()),
        ("not ok", "not ok 1".into()),
        ("paren", "1)".into()),
        ("PASS", "PASS".into()),
        ("FAIL space", "FAIL ".into()),
        ("BUILD", "BUILD SUCCESS".into()),
        ("Dtest", "-Dtest=".into()),
        ("braces", "{".into()),
        ("brackets", "[\n]".into()),
        ("tag", "<a>".into()),
        ("lone close", "</a>".into()),
        ("colon", ":".into()),
        ("dash", " - ".into()),
        ("gt", ">".into()),
        ("nul", "\0\0\n\0".into()),
        ("escape", "\x1b[".into()),
        ("unicode", "日本語のテスト ✓ ✔ ✕ ✖ × ↓ ○ é\u{301} \u{2028} \u{85} \u{a0} \u{1c} \u{1f} 🎉".into()),
        ("separators", "a\x1cb\x1d\x1e\x1f\n\x1c✓\x1cname\x1c\n\x1c  ok 1 x\x1c".into()),
        ("long line", "x".repeat(5000)),
        ("many blank lines", "\n".repeat(300)),
        ("cr only", "✓ a\r✕ b\rok 1 c\r".into()),
    ];
    v.push(("arabic digits", "١) fails\n  ١) suite\n       test:\nok ١ x\n✓ a ٣ms\n✓ b (٣ ms)".into()));
    v
}

// ---------------------------------------------------------------------------------------------
// Logs in each tool's format, one set per parser
// ---------------------------------------------------------------------------------------------

const JEST_VERBOSE: &str = "\
PASS src/__tests__/foo.test.js (5.123 s)
  Foo
    ✓ adds numbers (5 ms)
    ✓ handles  spaces  (12ms)
    ✕ fails on null (3 ms)
    ○ skipped todo
    ○ skipped test with (paren)
    ✓ no timing
    ✓ trailing space before timing  (5 ms)
    ✓  leading double space
    ✕ timing in seconds (10 s)
    ✓ timing without unit (7)
    ✓ same name
    ✕ same name
    ✓ a (1 ms) (2 ms)
    ✓\tname after tab
    ✓name without space
    ✎ todo item
  ● Foo › fails on null

    expect(received).toBe(expected) // Object.is equality

Tests:       2 failed, 1 skipped, 8 passed, 11 total
";

const JEST_JSON: &str = "\
[PASSED] Foo adds numbers
[FAILED] Foo fails on null
  [PASSED]   indented with spaces  
[SKIPPED] skipped one
[PASSED]
[PASSED] 
[FAILED]\tTabbed name
[PASSED] Foo adds numbers
[passed] lower case
x [PASSED] not at start
";

const VITEST: &str = "\
 RUN  v1.2.0 /app

 ✓ packages/a.spec.ts > suite > adds 12ms
 × packages/a.spec.ts > suite > fails 3ms
 ↓ packages/a.spec.ts > suite > skipped [skipped]
 ✓ packages/a.spec.ts > no time
 ✓ name in seconds 5 s
 ✓ name with a number 2
 ✓ a 1 2
 × failed  7ms
 ✓ test (3)
 ✓ packages/b.spec.ts (5 tests) 20ms
 ↓ skipped without tag
 ✓ ms only ms
 × 
 ✓  double space
✓tight
 Test Files  1 failed | 1 passed (2)
";

const KARMA: &str = "\
karma preamble ✔ before start
07 12 2026 10:00:00.000:INFO [launcher]: Starting browser ChromeHeadless
  Component
    ✔ renders
    ✖ fails
    nested
      ✔ deep test
      ✖ deep failure
  Other
    ✔ other test
✔ top level
✔test-no-space
 ✔ one space
\t✔ tabbed
    
  
  Third
    ✔ third test
SUMMARY:
✔ 10 tests completed
  After
    ✔ after summary
";

const KARMA_POP_EMPTY: &str = "\
Starting browser Chrome
      a
    b
  c
    ✔ never
";

const TAP: &str = "\
TAP version 13
# Subtest: math
    ok 1 - nested subtest
    1..1
ok 1 - adds
not ok 2 - subtracts
  ---
  duration_ms: 0.5
  ...
ok 3 - skipped # SKIP
ok 4 # TODO
not ok 5 name # TODO not done
ok 6
ok  7 - double space
ok 8 -
not ok 9 - same
ok 9 - same
ok x - not a number
Bail out!
1..9
";

const CALYPSO: &str = "\
> wp-calypso@0.17.0 test-client /calypso
+ ./node_modules/.bin/jest --config=test/client/jest.config.js client/components
PASS client/components/foo/test/index.js
  Foo
    render
      ✓ should render (15ms)
      ✕ should fail (3ms)
      ✓ no timing
    other
      ✓ deep (1ms)
  Bar
    ✓ bar test
  ● Foo › render › should fail
      ✓ after the bullet
+ ./node_modules/.bin/jest --config=test/server/jest.config.js server
PASS server/test.js
  Server
    ✓ serves (2ms)
Test Suites: 1 failed, 2 passed
    ✓ after test suites (1ms)
";

const CALYPSO_NO_INDENT: &str = " ./node_modules/.bin/jest x\n✓ not indented\n";
const CALYPSO_TIMING_NOT_LAST: &str = " ./node_modules/.bin/jest x\n  Suite\n    ✓ timing (5ms) then text\n";
const CALYPSO_NO_SPACE: &str = " ./node_modules/.bin/jest x\n  Suite\n    ✕failure\n";

const CHART_JS: &str = "\
Chrome 120.0.0.0 (Linux x86_64) Chart.controllers.bar should work FAILED
\tExpected 1 to be 2.
Chrome 120.0.0.0 (Linux x86_64) Core.helpers should do thing FAILED
\x1b[31mChrome 120.0 (Mac OS X 10.15.7) Colored test FAILED\x1b[39m
Chrome 120.0.0.0 (Linux x86_64): Executed 10 of 20 (2 FAILED)
Chrome 120 (Linux) trailing spaces FAILED  
Chrome 1.2
(Linux) split FAILED
Chrome 120.0.0.0 (Linux x86_64) Chart.controllers.bar should work FAILED
Chrome 9 (A) (B) two groups FAILED FAILED
";

const MARKED: &str = "\
  10 passing
  2 failing

  1) Marked
       should parse:
     Error: nope
1) Top level failure 
2)no space
3)\tTabbed
12) twelve
1) Top level failure
";

const P5JS: &str = "\
  1) Core
       p5.prototype.foo
         should work:
     AssertionError: expected
  2) Flat:
  3) Bad
     indent
       x:
{
  \"json\": 1,
  \"  4) inside\": \"json:\"
}
[1, 2]
[
  5) in list
       x:
]
<div>
  6) Inside xml
       nested:
</div>
<a><a>x</a></a> tail
<b>unclosed
  7) After
       xml <i>tag</i> fine:
\x1b[31m  8) Colored\x1b[0m
       test:
  9) Deeper
          than
            before:
  10) Same
       level
       again:
<x>a<<b>y</b>/x> joined closing tag
<e\u{301}>mark</e\u{301}> <ü>umlaut</ü>
  11) After the tags
       test:
";

/// p5js: failure titles around the reference's 1000-character limit.
fn p5js_long_titles() -> String {
    [998, 999, 1000, 1001, 1500]
        .iter()
        .map(|n| format!("  1) {}\n       {}:\n", "t".repeat(*n - 14), "u"))
        .chain(std::iter::once(format!("  2) {}:\n", "v".repeat(999))))
        .chain(std::iter::once(format!("  3) {}:\n", "w".repeat(1000))))
        .collect()
}

const JEST_FILES: &str = "\
PASS packages/a/test.js
PASS packages/b/test.js (5.2 s)
PASS packages/c/test.js (120ms)
PASS packages/d/test.js (1.5s)
FAIL packages/e/test.js (10 ms)
FAIL packages/f/test.js
  ● suite › test
PASS  double space
PASS
PASS (5 s)
FAIL x (1.2.3ms)
 PASS indented
PASS a (1ms) b (2ms)
FAIL\tpackages/g/test.js (3 ms)
PASS packages/e/test.js
";

const BPMN: &str = "\
\x1b[1A\x1b[2KPhantomJS 2.1.1 (Linux 0.0.0) Modeler should import FAILED
\x1b[1A\x1b[2KPhantomJS 2.1.1 (Linux x86_64) Viewer should render FAILED
Chrome Headless 120.0.0 (Linux x86_64) ChromeSuite test one FAILED
HeadlessChrome 120.0.0 (Linux 0.0.0) HC suite test FAILED
Chrome Headless 120.0.0 (Linux x86_64) last line without newline FAILED";

const ESLINT: &str = "\
  1) RuleTester
       valid
         should pass:
     AssertionError [ERR_ASSERTION]: Should have no errors
  2) linter
       verify():
     TypeError: Cannot read properties
  3) a SyntaxError in the name
  4) unterminated
";

const GROMMET: &str = "\
PASS src/js/components/Box/__tests__/Box-test.js (5.123 s)
FAIL src/js/components/Button/__tests__/Button-test.js (12.5s)
PASS src/js/a.js (300 ms)
PASS src/js/b.js
FAIL
foo
 PASS not at start
PASS   spaced   (5 s)  
PASS twice (1 s) (2 s)
FAIL src/js/a.js
";

const HIGHLIGHTJS: &str = "\
  hljs.highlight()
    ✓ should work (5ms)
    ✔ check mark variant
    1) should fail
  another suite
    ✓ test
1) top failure (10ms)
    ✓ no suite change deep
    ✓ a (1ms) b (2ms)
✓ unindented
  3 passing (20ms)
  1 failing
  1) hljs
       should fail:
";

const LIGHTHOUSE_MOCHA: &str = "\
running 3 test files
  Lighthouse
    config
      ✔ loads (12ms)
      ✔ no timing
      1) fails (5ms)
    runner
      2) another fail
  Second
    ✔ second (100mms)
  3 passing (1s)
  2 failing
running 1 test files
  Again
    ✔ again
";

const LIGHTHOUSE_JSON: &str = "\
$ ./node_modules/.bin/mocha --reporter json
{
  \"stats\": {},
  \"passes\": [
    {
      \"title\": \"works\",
      \"fullTitle\": \"suite works\",
      \"duration\": 1
    },
    {
      \"fullTitle\": \"suite \\\"quoted\\\" works\",
      \"x\": 1
    }
  ],
  \"failures\": [
    {
      \"title\": \"fails\",
      \"fullTitle\": \"suite fails\",
      \"err\": {}
    }
  ],
}
";

const NEXT_V1: &str = "\
+ xvfb-run karma start
noise before
07 12 2026 INFO [launcher]: Starting browser Chrome
  Button
    ✓ should render
    ✗ should fail
    nested
      ✓ deep
      AssertionError: #expected
      more detail

  ERROR something
  LOG: 'x'
  invalid suite line
  WARN careful
  Check this
    \x1b[32m✓\x1b[0m colored
  Input
    ✓  spaced
x ✓ not at start
TOTAL: 1 FAILED, 2 SUCCESS
    ✓ after total
+ xvfb-run karma start again
  Second
    ✓ second
";

const NEXT_V2: &str = "\
  Running:  button.spec.js                                                              (1 of 2)


  Button
    ✓ renders (120ms)
    ✓ other (5ms)
    ✓ no paren
  Running:  input.spec.js  (2 of 2)


  Input
    ✓ types (3ms)
    ✓ (nested) (paren) (4ms)
";

const NEXT_V2_FAILING: &str = "\
  Running:  button.spec.js (1 of 1)


  Button
    ✓ renders (120ms)
    1) fails
    2)  spaced failure 
";

const OPENLAYERS: &str = "\
Chrome Headless 120.0.0 (Linux x86_64) ol/Map should render FAILED
Chrome 120.0.0 (Linux x86_64) ol/View should fit FAILED
  1) ol.source.Vector
       #addFeature
         works:
     Error: expected
case circle-style: mismatch
case   spaced  : mismatch
  2) no error here
Chrome Headless 1.0 (Linux 5.15.0_x) ol/X\tname FAILED
";

const PRISM_CMD: &str = "./node_modules/.bin/mocha tests/run.js --reporter json";

const QUARTO: &str = "\
[smoke] > render /tmp/abc123.qmd ... \x1b[0m\x1b[32mok\x1b[0m (1s)
[smoke] > render /tmp/abc123/index.qmd ... \x1b[31mFAILED\x1b[0m
[unit] something ... 
[unit] info line \x1b[34mINFO stuff
[smoke] 2 passed | 1 failed (3 steps)
test result: [unit] x ... 32mok
[smoke] /tmp/zz.qmd and /tmp/yy.qmd ... 32mok
[smoke] /tmp/zz.qmd again ... 31mFAILED
[smoke] > render /tmp/abc123.qmd ... \x1b[31mFAILED\x1b[0m
[unit] é/tmp/ünï_1/x ... 32mok
no prefix ... 32mok
[unit] something ... 32mok
[unit] /tmp/e\u{301}x.qmd mark ... 32mok
[unit] /tmp/ab/ /tmp/ab.qmd /tmp/cd/ ... 32mok
 ERRORS 
[smoke] after errors ... 32mok
";

const MAVEN: &str = "\
+ mvn test -B -Dtest=com.google.gson.FooTest#testA -DfailIfNoTests=false
[INFO] Scanning for projects...
[INFO] BUILD SUCCESS
+ mvn test -Dtest=FooTest#testB
[INFO] BUILD FAILURE
+ mvn test -Dtest=A -Dtest=B
[INFO] BUILD SUCCESS
+ mvn -Dtest=D BUILD SUCCESS
[INFO] BUILD SUCCESS 
[INFO] BUILD UNKNOWN
+ mvn -Dtest=  spaced
+ mvn -Dtest=Uni\u{a0}code\u{1c}x
[INFO] BUILD FAILURE
";

const MAVEN_RACE: &str = "\
+ mvn test -Dtest=RaceA
+ mvn test -Dtest=RaceB
[INFO] BUILD SUCCESS
[INFO] BUILD FAILURE
+ mvn test -Dtest=RaceC
[INFO] BUILD FAILURE
";

const MAVEN_EARLY_RESULTS: &str = "\
[INFO] BUILD SUCCESS
[INFO] BUILD FAILURE
+ mvn -Dtest=Late1 test
+ mvn -Dtest=Late2 test
+ mvn -Dtest=Late3 test
[INFO] BUILD SUCCESS
";

const ANT: &str = "\
    [junit] [PASS] lombok.TestA
    [junit] [FAIL] lombok.TestB
    [junit] [ERR] lombok.TestC
[junit]   [PASS]    spaced  
[junit] [SKIP] no
[junit][PASS] nospace
    [junit] [PASS] 
    [junit] [FAIL] lombok.TestA
";

const GRADLE: &str = "\
com.example.FooTest > testA PASSED
com.example.FooTest > testB FAILED
> Task :test
> com.example.X > y PASSED
com.example.FooTest > testC
WARNING: something
PASSED
com.example.FooTest > testD
FAILED
com.example.FooTest > testE
com.example.FooTest > testF SKIPPED
PASSED
x  PASSED
PASSED
com.example.FooTest > testA FAILED
a b > c
FAILED
";

const GRADLE_TRAILING: &str = "\
com.example.FooTest > testA PASSED
com.example.FooTest > testG
";

const MINITEST: &str = "\
Run options: --seed 1234
TestFilters#test_: filters should convert markdown. = 0.01 s = .
TestFilters#test_: filters should fail here. = 0.02 s = F
TestFilters#test_: filters should error. = 0.00 s = E
TestFilters#test_: filters should skip. = 0.00 s = S
  TestSite#test_: indented. = 0.1 s = .  
TestSite#test_: last mark wins. = 0.1 s = E.F
JekyllTest#test_a = 0.01 s = .
JekyllTest#test_b = 0.02 s = F
JekyllTest#test_c = 0.00 s = E
TestSite#test_with. dots. in = name = .
no equals. here
TestX#test_y = 0.00 s = S
  TestX#test_z = 0.1 s = .  
. = .
";

const CUCUMBER: &str = "\
Feature: Site
  Scenario: Build site .....
Build a site ....F
Generate ...F.
Only F .F
name ..
 ..
tight....
";

const RUBY_UNIT: &str = "\
test: Test::Fluentd#test_a: .: (0.001)
Fluent::Test: test_b: E
test_c: F
test_d: O
test_e: Error here
test_f: Foo
test_g: E_x
test_h: Eé
test_i: E\u{301}
  test: indented: .
a: E b: Ex
test: : .
";

const RSPEC: &str = "\
Fastlane::Action works - passed
Fastlane::Action breaks - failed
x - pending
a - passed - failed
 - passed
tight -passed
Fastlane::Action works - failed
";

/// Each parser's own logs (label, log), before variants.
fn own_logs(parser: &str) -> Vec<(String, String)> {
    let s = |label: &str, log: &str| (label.to_string(), log.to_string());
    match parser {
        "parse_log_jest" => vec![s("verbose", JEST_VERBOSE)],
        "parse_log_jest_json" => vec![s("jq lines", JEST_JSON)],
        "parse_log_immutable_js" => vec![s("verbose", JEST_VERBOSE), s("jq lines", JEST_JSON)],
        "parse_log_vitest" => vec![s("verbose", VITEST)],
        "parse_log_karma" => vec![s("reporter", KARMA), s("dedent past the outermost suite", KARMA_POP_EMPTY)],
        "parse_log_tap" => vec![s("tap", TAP)],
        "parse_log_calypso" => vec![
            s("verbose", CALYPSO),
            s("not indented", CALYPSO_NO_INDENT),
            s("timing not last", CALYPSO_TIMING_NOT_LAST),
            s("no space after the mark", CALYPSO_NO_SPACE),
        ],
        "parse_log_chart_js" => vec![s("karma", CHART_JS)],
        "parse_log_marked" => vec![s("mocha", MARKED)],
        "parse_log_p5js" => vec![s("mocha", P5JS), s("long titles", &p5js_long_titles())],
        "parse_log_react_pdf" | "parse_log_carbon" => vec![s("jest files", JEST_FILES)],
        "parse_log_bpmn_js" => vec![s("karma", BPMN)],
        "parse_log_eslint" => vec![s("mocha", ESLINT)],
        "parse_log_grommet" => vec![s("jest files", GROMMET)],
        "parse_log_highlightjs" => vec![s("mocha", HIGHLIGHTJS)],
        "parse_log_lighthouse" => vec![s("mocha spec", LIGHTHOUSE_MOCHA), s("jest files", JEST_FILES), s("mocha json", LIGHTHOUSE_JSON)],
        "parse_log_next" => vec![s("karma", NEXT_V1), s("cypress", NEXT_V2), s("cypress failing", NEXT_V2_FAILING)],
        "parse_log_openlayers" => vec![s("karma and mocha", OPENLAYERS)],
        "parse_log_prismjs" => prism_logs(),
        "parse_log_quarto_cli" => vec![s("deno", QUARTO)],
        "parse_log_maven" => vec![s("one by one", MAVEN), s("race", MAVEN_RACE), s("results first", MAVEN_EARLY_RESULTS)],
        "parse_log_ant" => vec![s("junit", ANT)],
        "parse_log_gradle_custom" => vec![s("lines", GRADLE), s("name without result at the end", GRADLE_TRAILING)],
        "parse_log_minitest" => vec![s("verbose", MINITEST)],
        "parse_log_cucumber" => vec![s("progress", CUCUMBER)],
        "parse_log_ruby_unit" => vec![s("verbose", RUBY_UNIT)],
        "parse_log_rspec_transformed_json" => vec![s("jq lines", RSPEC)],
        "parse_log_jekyll" => vec![s("minitest", MINITEST), s("cucumber", CUCUMBER)],
        other => panic!("no logs for {other}"),
    }
}

/// PrismJS: the JSON reporter after the command, and JSON that makes the reference raise or key
/// its map by non-string titles.
fn prism_logs() -> Vec<(String, String)> {
    let run = |body: &str| format!("+ {PRISM_CMD}\n{body}\n");
    let mut v = vec![
        (
            "reporter".to_string(),
            run("{\n  \"stats\": {\"passes\": 2},\n  \"passes\": [{\"title\": \"a\", \"fullTitle\": \"lang a\"}, {\"fullTitle\": \"lang b\"}],\n  \"failures\": [{\"fullTitle\": \"lang b\"}, {\"fullTitle\": \"lang c\"}],\n  \"pending\": []\n}"),
        ),
        ("two runs".into(), format!("{}{}", run("{\"failures\": [], \"passes\": [{\"fullTitle\": \"x\"}]}"), run("noise {\"failures\": [{\"fullTitle\": \"x\"}], \"passes\": []} trailing"))),
        ("no command".into(), "{\"failures\": [], \"passes\": []}".into()),
    ];
    for (label, body) in [
        ("invalid json", "{\"failures\": [}"),
        ("no failures key", "{\"passes\": []}"),
        ("no passes key", "{\"failures\": [{\"fullTitle\": \"f\"}]}"),
        ("failures an object", "{\"failures\": {\"a\": 1}, \"passes\": []}"),
        ("failures an empty object", "{\"failures\": {}, \"passes\": []}"),
        ("failures an empty string", "{\"failures\": \"\", \"passes\": []}"),
        ("failures a string", "{\"failures\": \"ab\", \"passes\": []}"),
        ("failures a number", "{\"failures\": 1, \"passes\": []}"),
        ("failures null", "{\"failures\": null, \"passes\": []}"),
        ("test not an object", "{\"failures\": [1], \"passes\": []}"),
        ("test without a title", "{\"failures\": [{\"title\": \"t\"}], \"passes\": []}"),
        ("title a list", "{\"failures\": [{\"fullTitle\": [1]}], \"passes\": []}"),
        ("title an object", "{\"failures\": [{\"fullTitle\": {}}], \"passes\": []}"),
        (
            "titles of every scalar type",
            "{\"failures\": [{\"fullTitle\": 1}, {\"fullTitle\": null}, {\"fullTitle\": 2.5}, {\"fullTitle\": -0.0}, {\"fullTitle\": 1e16}, {\"fullTitle\": 1.5e-7}, {\"fullTitle\": false}],\
             \"passes\": [{\"fullTitle\": true}, {\"fullTitle\": 1.0}, {\"fullTitle\": \"1\"}, {\"fullTitle\": 0}, {\"fullTitle\": 123456789}, {\"fullTitle\": -7}, {\"fullTitle\": 100.0}, {\"fullTitle\": 1e20}]}",
        ),
        ("duplicate keys", "{\"failures\": [{\"fullTitle\": \"a\", \"fullTitle\": \"b\"}], \"passes\": [], \"passes\": [{\"fullTitle\": \"c\"}]}"),
        ("unicode escapes", "{\"failures\": [{\"fullTitle\": \"\\u00e9\\ud83c\\udf89 \\n\\t\"}], \"passes\": []}"),
        ("extra data", "{\"failures\": [], \"passes\": []} {\"x\": }"),
        ("no braces", "garbage"),
        ("empty object", "{}"),
    ] {
        v.push((label.to_string(), run(body)));
    }
    v
}

// ---------------------------------------------------------------------------------------------
// Logs made here by real tools
// ---------------------------------------------------------------------------------------------

const NODE_TESTS: &str = r#"
const { describe, it, test } = require('node:test');
const assert = require('node:assert');
describe('math', () => {
  it('adds', () => assert.strictEqual(1 + 1, 2));
  it('fails', () => assert.strictEqual(1, 2));
  it.skip('skipped', () => {});
  it.todo('todo');
  describe('nested suite', () => {
    it('deep ✓ unicode ünï', () => {});
    it('deep failure', () => { throw new Error('boom'); });
  });
});
test('top level', () => {});
test('top fail', () => { throw new TypeError('bad'); });
test('slow', async () => { await new Promise((r) => setTimeout(r, 15)); });
"#;

/// Logs from one `node --test` run in three reporters (tap, spec, dot), when `node` runs here.
fn node_logs(dir: &Path) -> Vec<(String, String)> {
    let file = dir.join("sample.test.js");
    std::fs::write(&file, NODE_TESTS).expect("writing the node test file");
    let reporters = ["tap", "spec", "dot"];
    let mut cmd = Command::new("node");
    cmd.arg("--test").current_dir(dir).env("NO_COLOR", "1");
    for r in reporters {
        cmd.arg(format!("--test-reporter={r}")).arg(format!("--test-reporter-destination={r}.log"));
    }
    if let Err(e) = cmd.arg(&file).output() {
        eprintln!("node is not runnable here ({e}); the corpus goes without its logs");
        return Vec::new();
    }
    let mut out = Vec::new();
    for r in reporters {
        let text = std::fs::read_to_string(dir.join(format!("{r}.log"))).expect("the reporter's log");
        assert!(text.contains("fails"), "node --test --test-reporter={r} did not report the tests:\n{text}");
        out.push((format!("node {r}"), text));
    }
    // The spec reporter's output under each harness's framing.
    if let Some((_, spec)) = out.iter().find(|(l, _)| l == "node spec").cloned() {
        out.push(("node spec under karma's framing".into(), format!("INFO [launcher]: Starting browser ChromeHeadless\n{spec}SUMMARY:\n")));
        out.push(("node spec under mocha's framing".into(), format!("running 1 test files\n{spec}\n  3 passing (20ms)\n")));
        out.push(("node spec under jest's framing".into(), format!("+ ./node_modules/.bin/jest x\n{spec}")));
        out.push(("node spec under karma xvfb".into(), format!("+ xvfb-run karma\nStarting browser Chrome\n{spec}")));
    }
    out
}

/// A maven log made offline by `mvn` itself with `set -x`: a pom-packaged project passes
/// `validate`, a jar project fails `test` (its plugins are not in the empty local repository), the
/// second pair runs concurrently and interleaves, and a quiet run prints no result.
fn maven_logs(dir: &Path) -> Vec<(String, String)> {
    if Command::new("mvn").arg("-v").output().map(|o| !o.status.success()).unwrap_or(true) {
        eprintln!("mvn is not installed here; the corpus goes without a real maven log");
        return Vec::new();
    }
    std::fs::create_dir_all(dir.join("jar")).expect("mkdir");
    let pom = |packaging: &str, artifact: &str| {
        format!(
            "<project xmlns=\"http://maven.apache.org/POM/4.0.0\"><modelVersion>4.0.0</modelVersion><groupId>x</groupId>\
             <artifactId>{artifact}</artifactId><version>1</version><packaging>{packaging}</packaging></project>"
        )
    };
    std::fs::write(dir.join("pom.xml"), pom("pom", "p")).expect("pom");
    std::fs::write(dir.join("jar/pom.xml"), pom("jar", "j")).expect("pom");
    let script = "M='mvn -o -B -Dmaven.repo.local=repo'; \
        $M validate -Dtest=com.example.PomTest#passes; \
        $M -f jar/pom.xml test -Dtest=com.example.JarTest#fails; \
        $M -f jar/pom.xml test -Dtest=com.example.RaceA & $M validate -Dtest=com.example.RaceB; wait; \
        $M -q validate -Dtest=com.example.Quiet";
    let o = Command::new("bash").arg("-xc").arg(script).current_dir(dir).output().expect("running bash");
    let log = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(log.contains("BUILD SUCCESS") && log.contains("-Dtest="), "the offline maven run printed no result:\n{log}");
    vec![("mvn offline".to_string(), log)]
}

/// The pieces random logs are made of: every parser's markers, whitespace of both kinds, marks
/// Python and `regex` classify differently.
const FUZZ_TOKENS: &[&str] = &[
    " ", " ", "  ", "    ", "\t", "\r", "\n", "\n", "\x1c", "\u{a0}", "\u{301}", "é", "x", "name", "Suite", "1", "12", "٣", ")", "(", ":", ".", "-", ">",
    "=", "#", "[", "]", "{", "}", "\"", "/", "_", "✓", "✕", "○", "✔", "✖", "✗", "×", "↓", "(5ms)", "(5 ms)", "(1.2 s)", "12ms", "[skipped]", "ok ", "not ok ",
    "1) ", "PASS ", "FAIL ", "PASSED", "FAILED", "SKIPPED", "BUILD SUCCESS", "BUILD FAILURE", "-Dtest=", "[junit] ", "[PASS] ", "[ERR] ", "[PASSED] ",
    "[FAILED] ", "test: ", ". = 0.1 s = ", " ...", " ....F", " - passed", " - failed", "E", "F", "O", " ./node_modules/.bin/jest ", " xvfb-run ",
    "Starting browser Chrome", "SUMMARY:", "TOTAL", "Test Suites", "  ● ", "running 2 test files", "3 passing", "Running: a.js (1 of 1)\n\n\n  S\n",
    "./node_modules/.bin/mocha --reporter json", "./node_modules/.bin/mocha tests/run.js --reporter json", "\"passes\": [", "\"failures\": [",
    "\"fullTitle\": \"t\",\n", "],", "[smoke] ", "[unit] ", "/tmp/ab.qmd", "/tmp/ab/", "32mok", "31mFAILED", "34mINFO", "ERRORS", "failures:",
    "test result:", "Chrome 1.0 (Linux x86_64) ", "Chrome Headless 1.0 (Linux x86_64) ", "2KPhantomJS 2.1 (Linux 0.0) ", "HeadlessChrome 1 (Linux 0) ",
    "case c: mismatch", "Error:", "AssertionError: #", "\x1b[31m", "\x1b[0m", "<a>", "</a>", "<b>", "</b>", "{\"failures\": [], \"passes\": []}",
];

/// What a random line starts with (after optional indentation): each format's line head.
const FUZZ_HEADS: &[&str] = &[
    "", "✓ ", "✕ ", "○ ", "✔ ", "✖ ", "✗ ", "× ", "↓ ", "ok 1 ", "not ok 2 ", "1) ", "12) ", "PASS ", "FAIL ", "[PASSED] ", "[FAILED] ", "[junit] [PASS] ",
    "[junit] [FAIL] ", "+ mvn test -Dtest=", "[INFO] BUILD SUCCESS", "[INFO] BUILD FAILURE", "a.B > c", "PASSED", "FAILED", "test: ", "T#test_a. = 0.1 s = ",
    "Scenario ..", "[smoke] ", "[unit] ", "case ", "Chrome 1.0 (Linux x86_64) ", "\"fullTitle\": \"", "<a>", "{", "[", "}", "]",
];

/// Random logs of [`FUZZ_HEADS`] and [`FUZZ_TOKENS`], the same every run (`AGENTMILL_PARSER_FUZZ` sets how many per
/// parser; 60 by default).
fn fuzz_logs() -> Vec<(String, String)> {
    let n: usize = std::env::var("AGENTMILL_PARSER_FUZZ").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
    let mut rng = fastrand::Rng::with_seed(0x5eed_1095);
    (0..n)
        .map(|i| {
            let lines = rng.usize(0..14);
            let mut log = String::new();
            for _ in 0..lines {
                if rng.bool() {
                    log.push_str(["  ", "    ", " ", "\t", "      "][rng.usize(..5)]);
                }
                log.push_str(FUZZ_HEADS[rng.usize(..FUZZ_HEADS.len())]);
                for _ in 0..rng.usize(0..7) {
                    log.push_str(FUZZ_TOKENS[rng.usize(..FUZZ_TOKENS.len())]);
                }
                log.push('\n');
            }
            (format!("fuzz #{i}"), log)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The comparison
// ---------------------------------------------------------------------------------------------

/// The whole corpus, made once for both generations' tests.
fn corpus() -> &'static [Case] {
    static CORPUS: OnceLock<Vec<Case>> = OnceLock::new();
    CORPUS.get_or_init(make_corpus)
}

/// Each parser's logs, every other parser's logs, the real tools' logs, hostile input and a
/// kitchen sink of them all, each in its variants and contexts.
fn make_corpus() -> Vec<Case> {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = node_logs(dir.path());
    let maven = maven_logs(&dir.path().join("mvn"));
    let mut everything: Vec<(String, String)> = Vec::new();
    for p in all_parsers() {
        for (label, log) in own_logs(p) {
            everything.push((format!("{p}: {label}"), log));
        }
    }
    let fuzz = fuzz_logs();
    let sink: String = everything.iter().map(|(_, l)| l.as_str()).collect::<Vec<_>>().join("\n");

    let mut cases = Vec::new();
    for parser in all_parsers() {
        let mut logs: Vec<(String, String)> = Vec::new();
        // Its own logs in all variants.
        for (label, log) in own_logs(parser) {
            for (variant, text) in variants(&log) {
                logs.push((format!("{label} ({variant})"), text));
            }
        }
        // Every other parser's logs as written, the real tools' logs and hostile input.
        for (label, log) in &everything {
            if !label.starts_with(parser) {
                logs.push((label.clone(), log.clone()));
            }
        }
        for (label, log) in node.iter().chain(&maven) {
            for (variant, text) in variants(log) {
                logs.push((format!("{label} ({variant})"), text));
            }
        }
        for (label, log) in hostile() {
            logs.push((format!("hostile: {label}"), log));
        }
        logs.extend(fuzz.iter().cloned());
        logs.push(("kitchen sink".into(), sink.clone()));
        logs.push(("kitchen sink, crlf".into(), sink.replace('\n', "\r\n")));
        for (ctx, full) in contexts(parser) {
            for (label, log) in &logs {
                if full || !label.contains(": ") || label.starts_with("hostile: ") {
                    cases.push(Case { parser, label: label.clone(), log: log.clone(), ctx: ctx.clone() });
                }
            }
        }
    }
    cases
}

/// How one parser fared in one generation.
#[derive(Default)]
struct Tally {
    cases: usize,
    raised: usize,
    tests_found: usize,
}

/// Runs every case of a generation through ours and the reference; returns the mismatches and
/// each parser's tally.
fn compare(generation: Generation, cases: &[Case]) -> (Vec<String>, BTreeMap<&'static str, Tally>) {
    let mut reference = Reference::start(generation);
    let mut failures = Vec::new();
    let mut counts: BTreeMap<&'static str, Tally> = BTreeMap::new();
    let mut missing: Vec<&str> = Vec::new();
    for case in cases {
        if missing.contains(&case.parser) {
            continue;
        }
        let theirs = reference.parse(case.parser, &case.log, &case.ctx.instance_id, &case.ctx.version, &case.ctx.repo);
        if let Err(e) = &theirs
            && e.contains("no parser named")
        {
            assert!(generation == Generation::V4 && ONLY_V5.contains(&case.parser), "swebench {} lacks {}: {e}", reference.version, case.parser);
            missing.push(case.parser);
            continue;
        }
        let ctx = ParseContext { instance_id: &case.ctx.instance_id, version: &case.ctx.version, repo: &case.ctx.repo };
        let ours = parsers::parse(case.parser, &case.log, &ctx, generation).expect("agentmill knows the parser");
        let entry = counts.entry(case.parser).or_default();
        entry.cases += 1;
        let what = || format!("{generation:?} {} [{}] ctx {:?}", case.parser, case.label, case.ctx);
        match (ours, theirs) {
            (Ok(ours), Ok(theirs)) => {
                entry.tests_found += theirs.len();
                if let Some(d) = diff_maps(&ours, &theirs, true) {
                    failures.push(format!("{}: {d}\n  ours: {ours:?}\n  reference: {theirs:?}", what()));
                }
            }
            (Err(_), Err(_)) => entry.raised += 1,
            (Ok(ours), Err(e)) => failures.push(format!("{}: the reference raised ({e}), ours gave {ours:?}", what())),
            (Err(e), Ok(theirs)) => failures.push(format!("{}: ours raised ({e}), the reference gave {theirs:?}", what())),
        }
    }
    if generation == Generation::V4 {
        let mut expected: Vec<&str> = ONLY_V5.to_vec();
        expected.sort_unstable();
        missing.sort_unstable();
        assert_eq!(missing, expected, "the parsers swebench {} lacks", reference.version);
    }
    (failures, counts)
}

fn check(generation: Generation) {
    let cases = corpus();
    let (failures, counts) = compare(generation, cases);
    for (parser, t) in &counts {
        eprintln!("{generation:?} {parser}: {} logs, {} raised in both, {} test results in all", t.cases, t.raised, t.tests_found);
        assert!(t.tests_found > 0, "{generation:?} {parser}: the corpus never gets a test result out of it");
    }
    for parser in all_parsers() {
        let expected = generation == Generation::V5 || !ONLY_V5.contains(&parser);
        assert_eq!(counts.contains_key(parser), expected, "{generation:?} ran {parser}: {}", counts.contains_key(parser));
    }
    assert!(failures.is_empty(), "{} of {} cases differ from the reference; the first:\n{}", failures.len(), cases.len(), failures.iter().take(12).cloned().collect::<Vec<_>>().join("\n\n"));
}

#[test]
fn javascript_java_ruby_parsers_match_swebench_5() {
    check(Generation::V5);
}

#[test]
fn javascript_java_ruby_parsers_match_swebench_4() {
    check(Generation::V4);
}

/// Each raising case the corpus relies on raises in the reference too (so a parser that never
/// raised could not pass by accident).
#[test]
fn the_raising_branches_raise_in_both() {
    let mut reference = Reference::start(Generation::V5);
    let dflt = Ctx::new("owner__repo-1", "", "owner/repo");
    let cases: Vec<(&str, String, Ctx)> = vec![
        ("parse_log_calypso", CALYPSO_NO_INDENT.into(), dflt.clone()),
        ("parse_log_calypso", CALYPSO_TIMING_NOT_LAST.into(), dflt.clone()),
        ("parse_log_calypso", " ./node_modules/.bin/jest x\n  S\n    ✓ crlf (5ms)\r\n".into(), dflt.clone()),
        ("parse_log_karma", KARMA_POP_EMPTY.into(), dflt.clone()),
        ("parse_log_prismjs", format!("{PRISM_CMD}\n{{\"failures\": [}}\n"), dflt.clone()),
        ("parse_log_lighthouse", String::new(), Ctx::new("x-1", "abc", "")),
        ("parse_log_immutable_js", String::new(), Ctx::new("immutable-js__immutable-js-1", "", "")),
        ("parse_log_jekyll", String::new(), Ctx::new("jekyll__jekyll-1", "", "")),
        ("parse_log_jekyll", String::new(), Ctx::new("jekyll", "", "")),
    ];
    for (parser, log, ctx) in cases {
        let theirs = reference.parse(parser, &log, &ctx.instance_id, &ctx.version, &ctx.repo);
        assert!(theirs.is_err(), "the reference read {parser} {log:?} {ctx:?}: {theirs:?}");
        let ours = parsers::parse(parser, &log, &ParseContext { instance_id: &ctx.instance_id, version: &ctx.version, repo: &ctx.repo }, Generation::V5)
            .expect("known parser");
        assert!(ours.is_err(), "ours read {parser} {log:?} {ctx:?}: {ours:?}");
    }
}

/// The module's names are the registry's, in its order, and each resolves.
#[test]
fn names_follow_the_registry() {
    let python = reference_support::workspace().join(".venv/bin/python");
    let out = Command::new(&python)
        .arg("-c")
        .arg(
            "from swebench.harness.log_parsers import PARSER_REGISTRY\n\
             for k, f in PARSER_REGISTRY.items():\n    print(f.__module__.rsplit('.', 1)[-1], k)",
        )
        .env_remove("PYTHONPATH")
        .output()
        .expect("running the reference's python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    for (lang, ours) in [("javascript", JS), ("java", JAVA), ("ruby", RUBY)] {
        let theirs: Vec<&str> = text.lines().filter_map(|l| l.split_once(' ')).filter(|(m, _)| *m == lang).map(|(_, k)| k).collect();
        assert_eq!(ours, theirs.as_slice(), "{lang} registry names");
        for name in ours {
            assert!(parsers::lookup(name).is_some(), "{name} does not resolve");
        }
    }
    let known: Vec<&str> = parsers::names().collect();
    for name in all_parsers() {
        assert!(known.contains(&name), "parsers::names() lacks {name}");
    }
}
