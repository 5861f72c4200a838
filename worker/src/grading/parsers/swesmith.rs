//! SWE-smith's log parsers: the `log_parser` methods of `swesmith` 0.0.9's repository profiles
//! (`swesmith/profiles/*.py`), line for line.
//!
//! A parser is named by the profile class that defines the `log_parser` a profile uses (the
//! `parser` field of `proto/data/swesmith-profiles.json`): `PythonProfile`, `GoProfile` and
//! `RustProfile` for most Python, Go and Rust repositories, the repository's own class where it
//! overrides the method. Most Java, JavaScript, TypeScript and C++ classes only forward to one of
//! the module functions (`return parse_log_jest(log)`); [`lookup`] maps each such class to the
//! port of that function, and `worker/tests/parsers_swesmith.rs` checks the mapping against the
//! package's source and every parser against the package, output for output.
//!
//! Every class a registered profile uses is here. Where the reference behaves in a way a grader
//! cannot copy, the port says so and returns [`ParseError`]:
//! * it raises: `VirtualClient0bb16489` on a line that is only `Passed`/`Failed`/`Skipped`
//!   (`IndexError`), `Jqueryc28c26ae` always (its `parse_log_qunit` is not defined: `NameError`),
//!   and `int()` of a digit string longer than 4300 characters (`ValueError`, Python 3.11's
//!   `sys.int_max_str_digits`) in the parsers that make up entries from summary counts;
//! * those parsers would build more than [`SYNTHETIC_LIMIT`] entries (`OK (99999999999)`), which
//!   the reference spends minutes and gigabytes on;
//! * `parse_log_gradle_junit_xml` meets a `<!DOCTYPE` in a report: `xml.etree` would read the DTD
//!   (entity and attribute defaults included), which agentmill does not.
//!
//! One order differs on purpose: `parse_log_boost_test` adds the passing tests from a Python
//! `set`, whose order changes from run to run; here they come in the order the log names them.
//!
//! Python's `re` is mirrored on the `regex` crate: patterns are written as the reference writes
//! them and [`translate`]d (`\s \S \d \w` get Python 3.11's classes, see `python.rs`), and
//! `re.IGNORECASE` is spelled out per letter as Python applies it ([`ignore_case`]: `i` also
//! matches `ı İ`, `k` `K`, `s` `ſ`). `str.split()`, `strip()`, `splitlines()`, `isdigit()` and
//! `int()` follow Python's rules.

use std::collections::HashSet;
use std::sync::LazyLock;

use agentmill_proto::TestStatus;
use regex::Regex;

use super::python::{PY_D, PY_NS, PY_S, PY_W};
use super::{Generation, ParseContext, ParseError, ParseFn, StatusMap, pystr};

/// Lists every parser once: the function, then the class names it serves.
macro_rules! parsers {
    ($($fun:ident => [$($name:literal),+ $(,)?]),+ $(,)?) => {
        /// The parser names this module serves (without the module's prefix): the profile classes
        /// that define a `log_parser`, grouped by the port that reads their logs.
        pub(super) const NAMES: &[&str] = &[$($($name,)+)+];

        /// The parser called `name` (a profile class, without the prefix), if this module has it.
        pub(super) fn lookup(name: &str) -> Option<ParseFn> {
            Some(match name {
                $($($name)|+ => $fun,)+
                _ => return None,
            })
        }
    };
}

parsers! {
    python_profile => [
        "PythonProfile",
    ],
    autograd => [
        "AutogradAc044f0d",
    ],
    mypy => [
        "MypyE93f06ce",
    ],
    paramiko => [
        "Paramiko23f92003",
    ],
    python_slugify => [
        "PythonSlugify872b3750",
    ],
    tornado => [
        "TornadoD5ac65c1",
    ],
    go_profile => [
        "GoProfile",
    ],
    rust_profile => [
        "RustProfile",
    ],
    jq => [
        "Jqb9e19de76",
    ],
    valkey => [
        "Valkeyfc7c04e4",
    ],
    virtual_client => [
        "VirtualClient0bb16489",
    ],
    dbal => [
        "Dbal",
    ],
    parse_log_jest => [
        "Aipdfchatbotlangchain4bb98092", "Antdesignef322504", "Awscdk17f69d67", "Babel2ea3fc8f",
        "Backstagef2fc1def", "Bruno80e09d1a", "Bulletproofreact63f68340", "Chakraui527a04c7",
        "Cherrystudiob767d6e2", "Classvalidator977d2c70", "Claudecodetemplates734b8a50",
        "Claudemem1341e93f", "Clineb5b503dd", "Codeservere90504b8", "Commanderjs395cf714",
        "Commitlint5635cf0a", "Continue437ac08a", "CopilotKitfd993504", "Crystal65b3b40b",
        "Datefnsdd663983", "Dayjsc8a26460", "Dokploy1e7522d1", "Draggable8a1eed57",
        "Echarts6be0e145", "Editorjs90d6dec9", "Effect5df4da10", "Evergreen9b774aee",
        "Excalidrawf39ac4a6", "Falcor39d64776", "FigmaContextMCPc7304173", "Filepond38294959",
        "Foam2cac8162", "Formik91475adb", "FossFLOWdaa0dd3b", "G2e58f72b1", "G691c0ac85",
        "Geminicli1b274b08", "Gitbook81f8ddcf", "GithubReadmeStats3e974011", "Gitmoji72dd6f38",
        "Handsontablee71f0f42", "Homebridge3a341e08", "Honof7d272ab", "Htmlwebpackplugin9a39db80",
        "Hyperapp5a113fa0", "ImmutableJS879adab5", "Ioniconsa9d1b7e2", "Janaffbde58",
        "Jest905bcbce", "Jsemotionb882bcba", "Layuiabdb748b", "Lobehubc576a13a", "Markmap205367a2",
        "Medusa3eb69ebd", "Metamaskextension5b029fa6", "Million13406265", "N8ncfd59cc5",
        "Newsnow951241bf", "NextChatc3b8c158", "Nuxt06533105", "Ohmyopencode976ffaeb",
        "OpenCute84c0cfd", "Pdfkitd0108157", "Pnpm47e85018", "Prismaf6b1ac64", "Queryd6884583",
        "Reactadmin823caa0b", "Reacthookform3adba2b8", "Reactnativefirebase7df61307",
        "Reactnativeweba9de220b", "Reactrouter445eacd5", "Reactselect052e864b",
        "Reactslick97442318", "Reactspring2ff6de7a", "Reactthreefiber9525ea0d",
        "Reacttransitiongroup2989b5b8", "Reactuse9ef95352", "Reactwindow2b982512",
        "Recharts5108cfdf", "Recoilc1b97f3a", "Redocd41fd46f", "Reduxsagaa4ace10d",
        "Reduxthunk184205d4", "Rete2aae1995", "Satori6203e870", "Signaturepad43989b6d",
        "Socialappcbd48c85", "SponsorBlockdfddffbc", "Strapie5b87a54", "Styledcomponents2bd64021",
        "Svgoc06d8f68", "ThreeJS73b3f248", "Tinacmsdffb104f", "Tldraw9b55464f", "Tremornpm7613bff6",
        "Trpc5845dc28", "TwelveFactorAgentsd20c7283", "UITARSdesktop3f254968", "Umami860e6390",
        "Uppy89fbbc72", "Vuebootstrapvue9a246f45", "Webpack24e3c2d2", "Whydidyourender3ec3512d",
        "Wretch661865a6", "Xstate1710ace0", "Xyflow39ff6e94",
    ],
    parse_log_mocha => [
        "Async23dbf76a", "Audiobookshelf626596b1", "Axiosef36347f", "Colorfef7b619",
        "Drawnixa046d152", "Eleventye9a16667", "Enzyme61e1b47c", "Etchera79db1db",
        "Expressef5f2e13", "Habiticae0af620b", "Hexo1fd997c3", "HighlightJS5697ae51",
        "Html5Boilerplateac08a17c", "Inke8b08e75", "InversifyJSfdd91868", "Joi481e270e",
        "JsPDFe6cf03db", "Jsmarko24b9402c", "Jsmdx00046053", "Jsoneditor0319b213",
        "Jsonserverf5dfdaff", "Jssqljs52e5649f", "Koa0a6afa5a", "Kyeb5c3eba", "Mathjs04e6e2d7",
        "Mocha410ce0d2", "Modernizr1d4c9cee", "Mongoose5f57a5bb", "Multerb6e4b1f6", "Nest346c9543",
        "Nightwatch54c8550c", "NoVNCd44f7e04", "Nocke7418da2", "Nodemondaad5c16",
        "Nodepostgresecff60dc", "Noderedised55918a", "Nx4f02c6b5", "Pangoline4d4c628",
        "PapaParseb10b87ef", "Pdfmake719e7314", "Pm2ff1ca974", "Prism31b467fa", "Puppeteerf4c9feef",
        "Qd180f4a0", "Reactmarkdownfda7fa56", "Revealjsbecc9bd1", "Riot32aecfaa", "Rxjsc15b37f8",
        "Sailsffebacc5", "Serverlessde62c71e", "Superagentcec26064", "Supertest14d905dc",
        "Tsx3a3a0071", "Typefest051325ac", "Ui28ebf1b8", "Uptimekuma5d955f95", "Void17e7a5b1",
        "Vscode4166e90a", "Webtorrentfd8f39e1", "Workbox1893b3f6", "Ws726c3732",
    ],
    parse_log_vitest => [
        "Antdesignpro607e63f4", "Betterauth71a0297b", "Calcom3c1d9068", "ChromaJS498427ea",
        "CrossEnv9951937a", "Directusac922d18", "Fabricjs6742471c", "FastGPTcfded3af",
        "Folo62efdd29", "Formbricks4b0c5186", "Fuelstsb3f37c91", "Langchainjs41bfea51",
        "Lerna215ff002", "Losslesscut26013077", "Mapboxgljs9236fbb0", "Materialui1a233f88",
        "Msw3a7b4510", "Nanobrowser322384f8", "NativeScript3d6a4392", "NextjsBoilerplate503d2665",
        "Payload8f660355", "Primitives90751370", "Qiankun693cdde7", "RSSHubee161b72",
        "Readest9cd88fe8", "Redux849c8ce5", "Refinedgithubd4a7c3fb", "Sigmajs13062dc5",
        "Solida0524c06", "Svelte6c9717a9", "Tailwindcssdf96ea5e", "Tiptap2d6de06c", "Trpc2f40ba93",
        "Typescripteslint8a95834b", "Univercc701579", "Unleash120f50bc", "Verdacciocda2467f",
        "Vite8b47ff76", "Zustand99379a6e",
    ],
    parse_log_jasmine => [
        "Backbonee8bc45ac", "Impressjsc9f6c674", "Stimulus422eb81f",
    ],
    parse_log_karma => [
        "Piskel51373322",
    ],
    parse_log_qunit => [
        "Jqueryc28c26ae",
    ],
    react_pdf => [
        "ReactPDFee5c96b8",
    ],
    marked => [
        "Markeddbf29d91",
    ],
    mocha_or_summary => [
        "Bit2d92cae7", "TypeScript0a74ec4e",
    ],
    drizzle_orm => [
        "Drizzleorma086f59f",
    ],
    parse_log_maven_surefire => [
        "Analysisik9b820257", "Asynchttpclientae59f51f", "Austin4c921ea0", "Aviatorscript231198d3",
        "Bazel08e077e7", "Bytebuddy9689261b", "Canalc0619c42", "Cate815e74d", "CoreNLP1b7edd19",
        "Dropwizarde01f4694", "Druid933dee04", "Dubboa92d5d08", "Fastjsonc942c834",
        "Flinkcdc7d9e1c62", "Flowableengine1d9f04bc", "Generatorc8cd0c8e", "Gephi8f9b9faa",
        "Googlejavaformat737b0032", "Gsondd2fe59c", "Guava0bf87046", "Guice6682b69d",
        "Hadoop7f2f7149", "Hbase30c42a87", "HikariCPbba167f0", "Hswebframework8c23cc95",
        "Hutool44836454", "Incubatorkiedroolsfe6decc7", "Iotdb36dadf5d", "Javapoetb9017a95",
        "Jedis52483b82", "Jetlinkscommunity858dab55", "Jsonschema2pojo8c90ed48", "JustAuth694bbf1b",
        "Jvmsandboxc01c28ab", "Keycloak051fcab5", "Killbillf7d48b59", "Langchain4j82b882d8",
        "Lettucefa5433c2", "Mapper3aa82765", "Metrics968f367a", "Miaoshae5801765", "Motan4c18b71e",
        "Mybatis359a0bcab", "MybatisPageHelperb4212c4d", "MycatServer243539fb", "Nacosf39ce37f",
        "Nifiab050e0c", "Otter7544d051", "Pulsarc51346fa", "QLExpressa632409f", "Quarkus99a220ef",
        "Questdb773dd8bf", "Restassureda67ed7ac", "Rocketmq9ad4a1b9", "Seatunneled021460",
        "Sentinel222670e6", "Shardingsphereecf76ffc", "Shenyu74954fa2", "SignalServer065e7302",
        "Socketioclientjavaeb438de0", "Storm4bc158f0", "Strimzikafkaoperator2d31a2b6",
        "Tcctransaction874cb910", "TelegramBots082d9846", "Thumbnailator068d36e3", "YCSB6d0fbba2",
        "Zxing50799640",
    ],
    parse_log_gradle_junit_xml => [
        "Apktool1981d35b", "Bisqf2fe13d0", "Btrace3ba0198d", "Calcite84e35baf",
        "CalendarViewf5479ea3", "Cassandra7fe688b0", "CloudReaderf5b9e67e", "Disruptorc871ca49",
        "Dynamicdatasource1d7f40ec", "Eureka459fcf59", "Fragmentation0394930a", "GoGoGode0d5961",
        "HMCL79a1c3af", "Hibernateorm8cc56928", "Iceberg15485f55", "Jadx331c4aaa", "Jmeterb1843c2a",
        "JsonPathb6c60b3d", "MPAndroidChart9c7275a0", "Mapdb8721c0e8", "Mindustry2ad41a90",
        "Mybatisplus9c06ccaf", "OsmAnd14a13bbc", "Paper81b91224", "Picocli121646e4",
        "Plantuml783ae241", "Reactorcore2198701c", "Recaf2a93d630", "Runelite6e2d0b20",
        "RxAndroidd7bd9b74", "SmartRefreshLayout224db48f", "Spotless8e776ec8",
        "Springauthorizationserver7d72f556", "Springbootf73a809c", "Traccardc1dfe15",
        "Tsunamisecurityscannercf018549", "Usbserialforandroida8b9ecc7", "Web3j37d9bc9b",
        "Zxingandroidembeddedd09b7c76",
    ],
    parse_log_ctest => [
        "Albert897c7797", "ArduinoJsonaa7fbd6c", "Asepriteda0d3228", "Benchmarkeed8f5c6",
        "Bloatya277a440", "Btopabcb906c", "Conky4f829244", "Cppcheck67606e6e", "Cpr22a41e60",
        "Cuberite7fd3fa5c", "DevilutionXafdaa2ac", "Doctest1da23a3e", "Doxygencbd8c4bc",
        "Dragonfly14103bde", "Drogon34955222", "Endlesskyf1dba50f", "Entte08302e1", "GSL756c91ab",
        "Ggwave3b877d07", "Glog53d58e45", "Gperftoolsa4724315", "Halidec2a6e34e", "Highway224b014b",
        "ImHexf4768420", "Inputleap34a34fb2", "Jsoncppe799ca05", "Keepassxc5bd42c47",
        "Ledger920059e6", "Leveldbac691084", "LibreSprite85ced3b6", "Libtorrentf0f8a352",
        "Libzmq51a5a9cb", "Magicenumc1aa6de9", "Magnumf3a4ce7d", "Mumble997ecba9", "Oatppf83d648f",
        "OneTBB3ebfedd8", "OpenMVGc76d8724", "OpenRCT2f228d738", "OpenTTDae80a47c",
        "Qv2rayd5c5aeb3", "Rapidjson24b5e7a8", "Recastnavigation13f43344", "Seastar7e457cf7",
        "Sentencepiece0f4ca43a", "Snappyda459b52", "Spdlog472945ba", "Sqlitebrowser95f92180",
        "Stablediffusioncppf0f641a1", "Supercollider438bf480", "Taskflowd8776bc0",
        "Tinyxml23324d04d", "WasmEdgecb41f751",
    ],
    parse_log_gtest => [
        "Azerothcorewotlk3ffbbe98", "Brpcd22fa17f", "Dracob91aa918", "FTXUIf73d92d3",
        "Falco43aaffc4", "Googletest5a9c3f9e", "Grpc9d7a53ea", "Ninjacc60300a", "Opencvaea90a9e",
        "Polybarf99e0b1c", "Retdec8be53bbd", "Srs6e2392f3", "Yamlcpp2e6383d2",
    ],
    parse_log_catch2 => [
        "Duckdbcb9e7c21", "LibreCAD7a288fff", "Luantifc363085", "Luau54a2ea00", "Snapcast439dc886",
        "Waybard527ccd4",
    ],
    parse_log_boost_test => [
        "QuantLiba05b6ab3", "Websocketpp4dfe1be7",
    ],
    airsim => [
        "AirSim13448700",
    ],
    aria2 => [
        "Aria2b4fd7cb1",
    ],
}

type Parsed = Result<StatusMap, ParseError>;

/// The most entries the count-based parsers make up from one log; more is a [`ParseError`].
pub(crate) const SYNTHETIC_LIMIT: u128 = 1_000_000;

/// Python 3.11's `sys.int_max_str_digits`: `int()` of a longer digit string raises.
const INT_MAX_STR_DIGITS: usize = 4300;

/// swebench 4.x's `TestStatus`, in the enum's order (the Python parsers loop over it).
const TEST_STATUS: [(&str, TestStatus); 5] = [
    ("FAILED", TestStatus::Failed),
    ("PASSED", TestStatus::Passed),
    ("SKIPPED", TestStatus::Skipped),
    ("ERROR", TestStatus::Error),
    ("XFAIL", TestStatus::Xfail),
];

fn error(parser: &'static str, reason: impl Into<String>) -> ParseError {
    ParseError { parser, reason: reason.into() }
}

// ---------------------------------------------------------------------------------------------
// Python on Rust: `re` patterns, `str` methods, `int()`
// ---------------------------------------------------------------------------------------------

/// A Python `re` pattern in `regex` syntax: `\s \S \d \w` become Python 3.11's classes (also
/// inside `[...]`), `\n \t \r \f \v` stay, an escaped punctuation character stays that character. Flags go in front
/// (`(?s)`, `(?m)`); `re.match` is a leading `^` written in the pattern.
fn translate(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() * 4);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('s') => out.push_str(PY_S),
            Some('S') => out.push_str(PY_NS),
            Some('d') => out.push_str(PY_D),
            Some('w') => out.push_str(PY_W),
            Some(e @ ('n' | 't' | 'r' | 'f' | 'v')) => {
                out.push('\\');
                out.push(e);
            }
            Some(e) if e.is_ascii_alphanumeric() => panic!("\\{e} in {pattern:?} has no translation"),
            Some(e) => out.push_str(&regex::escape(e.encode_utf8(&mut [0; 4]))),
            None => panic!("{pattern:?} ends in a backslash"),
        }
    }
    out
}

/// The characters Python's `re.IGNORECASE` matches for an ASCII letter (Python 3.11: simple case
/// folding plus its own equivalences, which add `ı İ` to `i`, `K` to `k` and `ſ` to `s`).
fn letter_variants(c: char) -> String {
    let lower = c.to_ascii_lowercase();
    let extra = match lower {
        'i' => "\u{130}\u{131}",
        'k' => "\u{212a}",
        's' => "\u{17f}",
        _ => "",
    };
    format!("{lower}{}{extra}", lower.to_ascii_uppercase())
}

/// A pattern compiled with `re.IGNORECASE`, as a case-sensitive pattern: every ASCII letter
/// outside an escape becomes the class of what Python matches for it.
fn ignore_case(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() * 4);
    let mut in_class = false;
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push(c);
                if let Some(escaped) = chars.next() {
                    out.push(escaped);
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push(c);
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            c if c.is_ascii_alphabetic() && in_class => out.push_str(&letter_variants(c)),
            c if c.is_ascii_alphabetic() => {
                out.push('[');
                out.push_str(&letter_variants(c));
                out.push(']');
            }
            c => out.push(c),
        }
    }
    out
}

/// Compiles a constant Python pattern: `flags` (`(?s)`, `(?m)`) in front, `ignore_case` for
/// `re.IGNORECASE`.
fn compile(flags: &str, pattern: &str, ignore: bool) -> Regex {
    let body = if ignore { translate(&ignore_case(pattern)) } else { translate(pattern) };
    regex::RegexBuilder::new(&format!("{flags}{body}"))
        .size_limit(64 << 20)
        .build()
        .unwrap_or_else(|e| panic!("the constant pattern {pattern:?} compiles: {e}"))
}

/// A lazily compiled constant Python pattern: `re!(NAME, "pattern")`, optionally with flags
/// (`"(?s)"`) and `ignore_case`.
macro_rules! re {
    ($name:ident, $pattern:expr) => {
        static $name: LazyLock<Regex> = LazyLock::new(|| compile("", $pattern, false));
    };
    ($name:ident, $flags:expr, $pattern:expr) => {
        static $name: LazyLock<Regex> = LazyLock::new(|| compile($flags, $pattern, false));
    };
    ($name:ident, $flags:expr, $pattern:expr, ignore_case) => {
        static $name: LazyLock<Regex> = LazyLock::new(|| compile($flags, $pattern, true));
    };
}

/// Group `i` of a match, `""` where it did not take part.
fn group<'h>(caps: &regex::Captures<'h>, i: usize) -> &'h str {
    caps.get(i).map_or("", |m| m.as_str())
}

/// `s.splitlines()`: lines end at `\n`, `\r\n`, `\r`, `\v`, `\f`, `\x1c`–`\x1e`, `\x85`, U+2028
/// and U+2029; the ends are dropped, and a final end makes no empty last line.
fn splitlines(s: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if matches!(c, '\n' | '\r' | '\x0b' | '\x0c' | '\x1c' | '\x1d' | '\x1e' | '\u{85}' | '\u{2028}' | '\u{2029}') {
            lines.push(&s[start..i]);
            start = i + c.len_utf8();
            if c == '\r' && chars.peek().is_some_and(|&(_, n)| n == '\n') {
                chars.next();
                start += 1;
            }
        }
    }
    if start < s.len() {
        lines.push(&s[start..]);
    }
    lines
}

/// Python 3.11's decimal digits (`\d`, what `int()` reads).
fn is_decimal(c: char) -> bool {
    static DECIMAL: LazyLock<Regex> = LazyLock::new(|| compile("", r"^\d$", false));
    c.is_ascii_digit() || (!c.is_ascii() && DECIMAL.is_match(c.encode_utf8(&mut [0; 4])))
}

/// Python 3.11's `Numeric_Type=Digit` characters that are not decimal digits (superscripts,
/// circled digits, …), which `str.isdigit()` also accepts: from `unicodedata` 14.0.
const DIGIT_NOT_DECIMAL: &[(u32, u32)] = &[
    (0xB2, 0xB3), (0xB9, 0xB9), (0x1369, 0x1371), (0x19DA, 0x19DA), (0x2070, 0x2070), (0x2074, 0x2079),
    (0x2080, 0x2089), (0x2460, 0x2468), (0x2474, 0x247C), (0x2488, 0x2490), (0x24EA, 0x24EA),
    (0x24F5, 0x24FD), (0x24FF, 0x24FF), (0x2776, 0x277E), (0x2780, 0x2788), (0x278A, 0x2792),
    (0x10A40, 0x10A43), (0x10E60, 0x10E68), (0x11052, 0x1105A), (0x1F100, 0x1F10A),
];

/// `s.isdigit()`.
fn isdigit(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| {
            let u = u32::from(c);
            is_decimal(c) || DIGIT_NOT_DECIMAL.iter().any(|&(lo, hi)| lo <= u && u <= hi)
        })
}

/// The value of a decimal digit: Unicode encodes each script's digits as a run of ten from zero,
/// runs of a script's digit styles back to back, so the value is the count of decimal digits
/// before it in its run, modulo ten.
fn digit_value(c: char) -> u128 {
    if let Some(d) = c.to_digit(10) {
        return u128::from(d);
    }
    let mut before = 0u128;
    let mut code = u32::from(c);
    while let Some(prev) = code.checked_sub(1).and_then(char::from_u32) {
        if !is_decimal(prev) {
            break;
        }
        before += 1;
        code -= 1;
    }
    before % 10
}

/// `int(digits)` for a `\d+` match, saturating far above [`SYNTHETIC_LIMIT`]; Python's digit
/// limit raises.
fn py_int(parser: &'static str, digits: &str) -> Result<u128, ParseError> {
    if digits.chars().count() > INT_MAX_STR_DIGITS {
        return Err(error(parser, format!("int() of a {}-digit number raises ValueError (Python's int_max_str_digits is {INT_MAX_STR_DIGITS})", digits.chars().count())));
    }
    Ok(digits.chars().fold(0u128, |n, c| n.saturating_mul(10).saturating_add(digit_value(c))))
}

/// Made-up entries (`range(count)`), within the budget of [`SYNTHETIC_LIMIT`] per log.
struct Synthetic {
    parser: &'static str,
    left: u128,
}

impl Synthetic {
    fn new(parser: &'static str) -> Self {
        Synthetic { parser, left: SYNTHETIC_LIMIT }
    }

    /// `for i in range(count): map[name(i)] = status`; a negative count adds nothing.
    fn add(&mut self, map: &mut StatusMap, count: i128, name: impl Fn(u128) -> String, status: TestStatus) -> Result<(), ParseError> {
        let Ok(count) = u128::try_from(count) else { return Ok(()) };
        if count > self.left {
            return Err(error(self.parser, format!("the log's counts ask for more than {SYNTHETIC_LIMIT} made-up test entries ({count} at once); the reference would spend minutes and gigabytes building them")));
        }
        self.left -= count;
        for i in 0..count {
            map.insert(name(i), status);
        }
        Ok(())
    }
}

/// `a - b` of two parsed counts.
fn minus(a: u128, b: u128) -> i128 {
    i128::try_from(a).unwrap_or(i128::MAX).saturating_sub(i128::try_from(b).unwrap_or(i128::MAX))
}

/// `a` as a count.
fn count(a: u128) -> i128 {
    i128::try_from(a).unwrap_or(i128::MAX)
}

// ---------------------------------------------------------------------------------------------
// Python profiles (`profiles/python.py`)
// ---------------------------------------------------------------------------------------------

/// One pattern per status, in `TestStatus` order, built from a template with `{w}` for the word.
fn per_status(template: &str) -> Vec<(Regex, TestStatus)> {
    TEST_STATUS.iter().map(|&(word, status)| (compile("", &template.replace("{w}", word), false), status)).collect()
}

/// `PythonProfile`: pytest `--verbose` lines, `re.match(rf"^(\S+)(\s+){status}", line)` for every
/// status.
fn python_profile(log: &str, _: &ParseContext<'_>, _: Generation) -> Parsed {
    static PATTERNS: LazyLock<Vec<(Regex, TestStatus)>> = LazyLock::new(|| per_status(r"^(\S+)(\s+){w}"));
    Ok(each_status(log, &PATTERNS))
}

/// `AutogradAc044f0d`: pytest-xdist lines, `^\[gw\d\]\s{status}\s(\S+)`.
fn autograd(log: &str, _: &ParseContext<'_>, _: Generation) -> Parsed {
    static PATTERNS: LazyLock<Vec<(Regex, TestStatus)>> = LazyLock::new(|| per_status(r"^\[gw\d\]\s{w}\s(\S+)"));
    Ok(each_status(log, &PATTERNS))
}

/// `Paramiko23f92003`: `-rA` summary lines, `^{status}\s(\S+)`.
fn paramiko(log: &str, _: &ParseContext<'_>, _: Generation) -> Parsed {
    static PATTERNS: LazyLock<Vec<(Regex, TestStatus)>> = LazyLock::new(|| per_status(r"^{w}\s(\S+)"));
    Ok(each_status(log, &PATTERNS))
}

/// Every line against every status pattern; group 1 of each match is an id.
fn each_status(log: &str, patterns: &[(Regex, TestStatus)]) -> StatusMap {
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        for (pattern, status) in patterns {
            if let Some(caps) = pattern.captures(line) {
                map.insert(group(&caps, 1).to_string(), *status);
            }
        }
    }
    map
}

/// `MypyE93f06ce`: a line holding `PASSED` (else `FAILED`) gives its last token that status.
fn mypy(log: &str, _: &ParseContext<'_>, _: Generation) -> Parsed {
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        for (word, status) in [("PASSED", TestStatus::Passed), ("FAILED", TestStatus::Failed)] {
            if line.contains(word) {
                if let Some(last) = pystr::split(line).last() {
                    map.insert((*last).to_string(), status);
                }
                break;
            }
        }
    }
    Ok(map)
}

/// `PythonSlugify872b3750`: unittest's `name ... ok|FAIL|ERROR`, the name of a limited alphabet.
fn python_slugify(log: &str, _: &ParseContext<'_>, _: Generation) -> Parsed {
    re!(OK, r"^([a-zA-Z0-9_\-,\.\s\(\)']+)\s\.{3}\sok$");
    re!(FAIL, r"^([a-zA-Z0-9_\-,\.\s\(\)']+)\s\.{3}\sFAIL$");
    re!(ERROR, r"^([a-zA-Z0-9_\-,\.\s\(\)']+)\s\.{3}\sERROR$");
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        if let Some(caps) = OK.captures(line) {
            map.insert(group(&caps, 1).to_string(), TestStatus::Passed);
            continue;
        }
        for (pattern, status) in [(&*FAIL, TestStatus::Failed), (&*ERROR, TestStatus::Error)] {
            if let Some(caps) = pattern.captures(line) {
                map.insert(group(&caps, 1).to_string(), status);
            }
        }
    }
    Ok(map)
}

/// `TornadoD5ac65c1`: tornado's unittest runner (`name ... ok`, `... skipped `, `ERROR:`/`FAIL:`
/// lines giving their 2nd and 3rd tokens).
fn tornado(log: &str, _: &ParseContext<'_>, _: Generation) -> Parsed {
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        let head = || line.split(" ... ").next().unwrap_or_default().to_string();
        if line.ends_with("... ok") {
            map.insert(head(), TestStatus::Passed);
        } else if line.contains(" ... skipped ") {
            map.insert(head(), TestStatus::Skipped);
        } else if line.starts_with("ERROR:") || line.starts_with("FAIL:") {
            let name = pystr::split(line).into_iter().skip(1).take(2).collect::<Vec<_>>().join(" ");
            map.insert(name, TestStatus::Failed);
        }
    }
    Ok(map)
}

// ---------------------------------------------------------------------------------------------
// Go, Rust, C, C#, PHP (`golang.py`, `rust.py`, `c.py`, `csharp.py`, `php.py`)
// ---------------------------------------------------------------------------------------------

/// `GoProfile`: `go test -v`; the first of `--- PASS: `, `--- FAIL: `, `FAIL:?\s?(.+?)\s`,
/// `--- SKIP: ` that matches the stripped line.
fn go_profile(log: &str, _: &ParseContext<'_>, _: Generation) -> Parsed {
    re!(PASS, r"^--- PASS: (\S+)");
    re!(FAIL, r"^--- FAIL: (\S+)");
    re!(FAIL_LINE, r"^FAIL:?\s?(.+?)\s");
    re!(SKIP, r"^--- SKIP: (\S+)");
    let patterns = [(&*PASS, TestStatus::Passed), (&*FAIL, TestStatus::Failed), (&*FAIL_LINE, TestStatus::Failed), (&*SKIP, TestStatus::Skipped)];
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        let line = pystr::strip(line);
        for (pattern, status) in patterns {
            if let Some(caps) = pattern.captures(line) {
                map.insert(group(&caps, 1).to_string(), status);
                break;
            }
        }
    }
    Ok(map)
}

/// `RustProfile`: libtest's `test name ... ok|FAILED` over `splitlines()`; the name is what comes
/// before the last `" ... "`, stripped.
fn rust_profile(log: &str, _: &ParseContext<'_>, _: Generation) -> Parsed {
    let mut map = StatusMap::new();
    for line in splitlines(log) {
        let line = line.strip_prefix("test ").unwrap_or(line);
        let name = || pystr::strip(line.rsplit_once(" ... ").map_or(line, |(head, _)| head)).to_string();
        if line.contains("... ok") {
            map.insert(name(), TestStatus::Passed);
        } else if line.contains("... FAILED") {
            map.insert(name(), TestStatus::Failed);
        }
    }
    Ok(map)
}

/// `Jqb9e19de76`: automake's `PASS: name` / `FAIL: name`.
fn jq(log: &str, _: &ParseContext<'_>, _: Generation) -> Parsed {
    re!(LINE, r"^\s*(PASS|FAIL):\s(.+)$");
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        if let Some(caps) = LINE.captures(pystr::strip(line)) {
            let status = if group(&caps, 1) == "PASS" { TestStatus::Passed } else { TestStatus::Failed };
            map.insert(group(&caps, 2).to_string(), status);
        }
    }
    Ok(map)
}

/// `Valkeyfc7c04e4`: `[ok|err|skip|ignore]: name (N ms)`; a failed name loses a final
/// ` in <file>`.
fn valkey(log: &str, _: &ParseContext<'_>, _: Generation) -> Parsed {
    re!(LINE, r"^\[(ok|err|skip|ignore)\]:\s(.+?)(?:\s\((\d+\s*m?s)\))?$");
    re!(IN_FILE, r"\s+in\s+\S+$");
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        let Some(caps) = LINE.captures(pystr::strip(line)) else { continue };
        let name = group(&caps, 2);
        match group(&caps, 1) {
            "ok" => {
                map.insert(name.to_string(), TestStatus::Passed);
            }
            "err" => {
                map.insert(IN_FILE.replace_all(name, "").into_owned(), TestStatus::Failed);
            }
            _ => {
                map.insert(name.to_string(), TestStatus::Skipped);
            }
        }
    }
    Ok(map)
}

/// `VirtualClient0bb16489`: `dotnet test` lines starting `Passed`/`Failed`/`Skipped`, the id being
/// the second token (a line with one token raises `IndexError` in the reference).
fn virtual_client(log: &str, _: &ParseContext<'_>, _: Generation) -> Parsed {
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        let line = pystr::strip(line);
        for (prefix, status) in [("Passed", TestStatus::Passed), ("Failed", TestStatus::Failed), ("Skipped", TestStatus::Skipped)] {
            if line.starts_with(prefix) {
                let Some(name) = pystr::split(line).get(1).copied() else {
                    return Err(error("VirtualClient0bb16489", format!("line {line:?} has no second token: the reference raises IndexError")));
                };
                map.insert(name.to_string(), status);
                break;
            }
        }
    }
    Ok(map)
}

/// `Dbal`: PHPUnit `--testdox` (`✔ name`, `✘ name`, `↩ name`).
fn dbal(log: &str, _: &ParseContext<'_>, _: Generation) -> Parsed {
    re!(PASSED, r"^\s*✔\s*(.+)$");
    re!(FAILED, r"^\s*✘\s*(.+)$");
    re!(SKIPPED, r"^\s*↩\s*(.+)$");
    let patterns = [(&*PASSED, TestStatus::Passed), (&*FAILED, TestStatus::Failed), (&*SKIPPED, TestStatus::Skipped)];
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        for (pattern, status) in patterns {
            if let Some(caps) = pattern.captures(line) {
                map.insert(pystr::strip(group(&caps, 1)).to_string(), status);
                break;
            }
        }
    }
    Ok(map)
}

// ---------------------------------------------------------------------------------------------
// JavaScript and TypeScript (`javascript.py`, `typescript.py`)
// ---------------------------------------------------------------------------------------------

/// `parse_log_jest`: `✓ name (N ms)`, `✕ …`, `○ …` on stripped lines.
fn parse_log_jest(log: &str, _: &ParseContext<'_>, _: Generation) -> Parsed {
    re!(LINE, r"^\s*(✓|✕|○)\s(.+?)(?:\s\((\d+\s*m?s)\))?$");
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        if let Some(caps) = LINE.captures(pystr::strip(line)) {
            let status = match group(&caps, 1) {
                "✓" => TestStatus::Passed,
                "✕" => TestStatus::Failed,
                _ => TestStatus::Skipped,
            };
            map.insert(group(&caps, 2).to_string(), status);
        }
    }
    Ok(map)
}

/// `parse_log_mocha`: `✓`/`✔ name`, `✖ name`, `- name`, and numbered failures `N) name`.
fn mocha(log: &str) -> StatusMap {
    re!(LINE, r"^\s*([✓✔]|✖|-)\s(.+?)(?:\s\((\d+\s*m?s)\))?$");
    re!(NUMBERED, r"^\s*\d+\)\s+(.+?)(?:\s\((\d+\s*m?s)\))?$");
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        let line = pystr::strip(line);
        if let Some(caps) = LINE.captures(line) {
            let status = match group(&caps, 1) {
                "✓" | "✔" => TestStatus::Passed,
                "✖" => TestStatus::Failed,
                _ => TestStatus::Skipped,
            };
            map.insert(group(&caps, 2).to_string(), status);
        } else if let Some(caps) = NUMBERED.captures(line) {
            map.insert(group(&caps, 1).to_string(), TestStatus::Failed);
        }
    }
    map
}

fn parse_log_mocha(log: &str, _: &ParseContext<'_>, _: Generation) -> Parsed {
    Ok(mocha(log))
}

/// `parse_log_vitest`: the first of seven patterns on the stripped line; a name is cut at its
/// first `(`.
fn parse_log_vitest(log: &str, _: &ParseContext<'_>, _: Generation) -> Parsed {
    static PATTERNS: LazyLock<Vec<(Regex, TestStatus)>> = LazyLock::new(|| {
        [
            (r"^✓\s+(.+?)(?:\s+\([\.\d]+ms\))?$", TestStatus::Passed),
            (r"^❯\s+(.+?)(?:\s+\(.*?\))?$", TestStatus::Failed),
            (r"^✗\s+(.+?)(?:\s+\([\.\d]+ms\))?$", TestStatus::Failed),
            (r"^○\s+(.+?)(?:\s+\([\.\d]+ms\))?$", TestStatus::Skipped),
            (r"^✓\s+(.+?)$", TestStatus::Passed),
            (r"^✗\s+(.+?)$", TestStatus::Failed),
            (r"^○\s+(.+?)$", TestStatus::Skipped),
        ]
        .into_iter()
        .map(|(p, s)| (compile("", p, false), s))
        .collect()
    });
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        let line = pystr::strip(line);
        for (pattern, status) in PATTERNS.iter() {
            if let Some(caps) = pattern.captures(line) {
                let mut name = pystr::strip(group(&caps, 1));
                if let Some((head, _)) = name.split_once('(') {
                    name = pystr::strip(head);
                }
                map.insert(name.to_string(), *status);
                break;
            }
        }
    }
    Ok(map)
}

/// `parse_log_karma`: the largest `Executed N of M SUCCESS` / `(N FAILED)` / `(N skipped)` counts,
/// as made-up entries.
fn parse_log_karma(log: &str, _: &ParseContext<'_>, _: Generation) -> Parsed {
    const P: &str = "parse_log_karma";
    re!(SUCCESS, r"Executed\s+(\d+)\s+of\s+\d+\s+SUCCESS");
    re!(FAILED, r"Executed\s+\d+\s+of\s+\d+\s+\((\d+)\s+FAILED\)");
    re!(SKIPPED, r"Executed\s+\d+\s+of\s+(\d+)\s+\((\d+)\s+skipped\)");
    let (mut passed, mut failed, mut skipped) = (0u128, 0u128, 0u128);
    for line in log.split('\n') {
        if let Some(caps) = SUCCESS.captures(line) {
            passed = passed.max(py_int(P, group(&caps, 1))?);
        }
        if let Some(caps) = FAILED.captures(line) {
            failed = failed.max(py_int(P, group(&caps, 1))?);
        }
        if let Some(caps) = SKIPPED.captures(line) {
            skipped = skipped.max(py_int(P, group(&caps, 2))?);
        }
    }
    let mut map = StatusMap::new();
    let mut synthetic = Synthetic::new(P);
    synthetic.add(&mut map, count(passed), |i| format!("karma_unit_test_{}", i + 1), TestStatus::Passed)?;
    synthetic.add(&mut map, count(failed), |i| format!("karma_unit_test_failed_{}", i + 1), TestStatus::Failed)?;
    synthetic.add(&mut map, count(skipped), |i| format!("karma_unit_test_skipped_{}", i + 1), TestStatus::Skipped)?;
    Ok(map)
}

/// `parse_log_jasmine`: the first `N specs, M failures(, K pending specs)` line, as made-up
/// entries.
fn parse_log_jasmine(log: &str, _: &ParseContext<'_>, _: Generation) -> Parsed {
    const P: &str = "parse_log_jasmine";
    re!(SUMMARY, r"(\d+)\s+specs?,\s+(\d+)\s+failures?(?:,\s+(\d+)\s+pending\s+specs?)?");
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        let Some(caps) = SUMMARY.captures(line) else { continue };
        let total = py_int(P, group(&caps, 1))?;
        let failures = py_int(P, group(&caps, 2))?;
        let pending = match caps.get(3) {
            Some(m) => py_int(P, m.as_str())?,
            None => 0,
        };
        let passed = minus(total, failures).saturating_sub(count(pending));
        let mut synthetic = Synthetic::new(P);
        synthetic.add(&mut map, passed, |i| format!("jasmine_spec_{}", i + 1), TestStatus::Passed)?;
        synthetic.add(&mut map, count(failures), |i| format!("jasmine_spec_failed_{}", i + 1), TestStatus::Failed)?;
        synthetic.add(&mut map, count(pending), |i| format!("jasmine_spec_pending_{}", i + 1), TestStatus::Skipped)?;
        break;
    }
    Ok(map)
}

/// `Jqueryc28c26ae`: its `log_parser` calls `parse_log_qunit`, which swesmith 0.0.9 does not
/// define; the reference raises `NameError` for every log.
fn parse_log_qunit(_: &str, _: &ParseContext<'_>, _: Generation) -> Parsed {
    Err(error("Jqueryc28c26ae", "its log_parser calls parse_log_qunit, which swesmith 0.0.9 does not define: the reference raises NameError for every log"))
}

/// `ReactPDFee5c96b8`: vitest's verbose reporter (`✓ name 12ms`, `✗ name 3ms`, `✖ name`, `✓ name`).
fn react_pdf(log: &str, _: &ParseContext<'_>, _: Generation) -> Parsed {
    re!(PASS_MS, r"^\s*✓\s(.*)\s\d+ms");
    re!(FAIL_MS, r"^\s*✗\s(.*)\s\d+ms");
    re!(FAIL, r"^\s*✖\s(.*)");
    re!(PASS, r"^\s*✓\s(.*)");
    let patterns = [(&*PASS_MS, TestStatus::Passed), (&*FAIL_MS, TestStatus::Failed), (&*FAIL, TestStatus::Failed), (&*PASS, TestStatus::Passed)];
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        for (pattern, status) in patterns {
            if let Some(caps) = pattern.captures(line) {
                map.insert(pystr::strip(group(&caps, 1)).to_string(), status);
                break;
            }
        }
    }
    Ok(map)
}

/// `Markeddbf29d91`: `node --test` (`✖ name (1.2ms)`, `✔ name (0.5ms)`).
fn marked(log: &str, _: &ParseContext<'_>, _: Generation) -> Parsed {
    re!(FAIL, r"^\s*✖\s(.*?)\s\([\.\d]+ms\)");
    re!(PASS, r"^\s*✔\s(.*?)\s\([\.\d]+ms\)");
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        if let Some(caps) = FAIL.captures(line) {
            map.insert(pystr::strip(group(&caps, 1)).to_string(), TestStatus::Failed);
        } else if let Some(caps) = PASS.captures(line) {
            map.insert(pystr::strip(group(&caps, 1)).to_string(), TestStatus::Passed);
        }
    }
    Ok(map)
}

/// `Bit2d92cae7`, `TypeScript0a74ec4e`: `parse_log_mocha`, or, where it finds nothing, the first
/// `N passing` / `N failing` counts as made-up entries.
fn mocha_or_summary(log: &str, _: &ParseContext<'_>, _: Generation) -> Parsed {
    const P: &str = "Bit2d92cae7 (also TypeScript0a74ec4e)";
    re!(PASSING, r"(\d+)\s+passing");
    re!(FAILING, r"(\d+)\s+failing");
    let mut map = mocha(log);
    if map.is_empty() {
        let passing = PASSING.captures(log).map(|c| py_int(P, group(&c, 1))).transpose()?.unwrap_or(0);
        let failing = FAILING.captures(log).map(|c| py_int(P, group(&c, 1))).transpose()?.unwrap_or(0);
        let mut synthetic = Synthetic::new(P);
        synthetic.add(&mut map, count(passing), |i| format!("test_{i}"), TestStatus::Passed)?;
        synthetic.add(&mut map, count(failing), |i| format!("test_failed_{i}"), TestStatus::Failed)?;
    }
    Ok(map)
}

/// `Drizzleorma086f59f`: turbo's `pkg:test: …` task lines (passed unless a line with `ERROR`
/// names the task), else the `Tasks: N successful, M total` counts as made-up entries.
fn drizzle_orm(log: &str, _: &ParseContext<'_>, _: Generation) -> Parsed {
    const P: &str = "Drizzleorma086f59f";
    re!(TASK, r"^\s*(\S+?:test\S*)\s*:");
    re!(SUMMARY, r"Tasks:\s+(\d+)\s+successful,\s+(\d+)\s+total");
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        if let Some(caps) = TASK.captures(line) {
            map.entry(group(&caps, 1).to_string()).or_insert(TestStatus::Passed);
        }
        if line.contains("ERROR") && line.contains(':') {
            let task = pystr::strip(line.split(':').next().unwrap_or_default());
            if !task.is_empty() && task.to_lowercase().contains("test") {
                map.insert(task.to_string(), TestStatus::Failed);
            }
        }
    }
    if let Some(caps) = SUMMARY.captures(log) {
        let successful = py_int(P, group(&caps, 1))?;
        let total = py_int(P, group(&caps, 2))?;
        if map.is_empty() {
            let mut synthetic = Synthetic::new(P);
            synthetic.add(&mut map, count(successful), |i| format!("turbo_task_{i}"), TestStatus::Passed)?;
            synthetic.add(&mut map, minus(total, successful), |i| format!("turbo_task_failed_{i}"), TestStatus::Failed)?;
        }
    }
    Ok(map)
}

// ---------------------------------------------------------------------------------------------
// Java (`java.py`)
// ---------------------------------------------------------------------------------------------

/// `parse_log_maven_surefire`: `[INFO]/[ERROR] name -- Time elapsed: …` (failed where an `[ERROR]`
/// line ends `<<< FAILURE!`) and `method(Class)  Time elapsed: … sec` (passed, as `Class.method`).
fn parse_log_maven_surefire(log: &str, _: &ParseContext<'_>, _: Generation) -> Parsed {
    re!(WITH_PREFIX, r"^\[(INFO|ERROR)\]\s+(.*?)\s+--\s+Time elapsed:\s+([\d.]+)\s");
    re!(NO_PREFIX, r"^([a-zA-Z0-9_]+)\(([a-zA-Z0-9_.]+)\)\s+Time elapsed:\s+([\d.]+)\s+sec");
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        let line = pystr::strip(line);
        if line.starts_with('[') {
            if line.ends_with("<<< FAILURE!") && line.starts_with("[ERROR]") {
                if let Some(caps) = WITH_PREFIX.captures(line) {
                    map.insert(group(&caps, 2).to_string(), TestStatus::Failed);
                }
            } else if line.contains("Time elapsed:")
                && let Some(caps) = WITH_PREFIX.captures(line)
            {
                map.insert(group(&caps, 2).to_string(), TestStatus::Passed);
            }
        } else if line.contains("Time elapsed:")
            && line.contains('(')
            && let Some(caps) = NO_PREFIX.captures(line)
        {
            map.insert(format!("{}.{}", group(&caps, 2), group(&caps, 1)), TestStatus::Passed);
        }
    }
    Ok(map)
}

/// `parse_log_gradle_junit_xml`: every `<?xml version … </testsuite>` stretch of the log read with
/// `xml.etree.ElementTree.fromstring` (stretches it rejects are skipped); each `testcase` below
/// the root is `classname.name` (the root's `name` where `classname` is missing), failed with a
/// `failure` or `error` child, else skipped with a `skipped` child, else passed.
fn parse_log_gradle_junit_xml(log: &str, _: &ParseContext<'_>, _: Generation) -> Parsed {
    re!(DOCUMENT, "(?s)", r"<\?xml version.*?</testsuite>");
    let mut map = StatusMap::new();
    for document in DOCUMENT.find_iter(log) {
        let elements = match xml::parse(document.as_str()) {
            Ok(elements) => elements,
            Err(xml::Rejected::Malformed(_)) => continue,
            Err(xml::Rejected::Doctype) => {
                return Err(error("parse_log_gradle_junit_xml", "a JUnit XML report in the log has a <!DOCTYPE>: xml.etree would apply its DTD, which agentmill does not read"));
            }
        };
        let Some(root) = elements.first() else { continue };
        let suite = root.attribute("name").unwrap_or_default();
        for (index, testcase) in elements.iter().enumerate().take(root.end).skip(1) {
            if testcase.tag.as_deref() != Some("testcase") {
                continue;
            }
            let classname = testcase.attribute("classname").unwrap_or(suite);
            let method = testcase.attribute("name").unwrap_or_default();
            let child = |tag: &str| {
                elements.iter().enumerate().take(testcase.end).skip(index + 1).any(|(_, e)| e.parent == Some(index) && e.tag.as_deref() == Some(tag))
            };
            let status = if child("failure") || child("error") {
                TestStatus::Failed
            } else if child("skipped") {
                TestStatus::Skipped
            } else {
                TestStatus::Passed
            };
            map.insert(format!("{classname}.{method}"), status);
        }
    }
    Ok(map)
}

// ---------------------------------------------------------------------------------------------
// C++ (`cpp.py`)
// ---------------------------------------------------------------------------------------------

/// `parse_log_ctest`: `N/M Test #K: name .... Passed|Failed` anywhere (case-insensitive), then
/// the `The following tests FAILED:` list, else the `X% tests passed, N tests failed out of M`
/// counts as made-up entries.
fn parse_log_ctest(log: &str, _: &ParseContext<'_>, _: Generation) -> Parsed {
    const P: &str = "parse_log_ctest";
    re!(RESULT, "", r"\s*\d+/\d+\s+Test\s+#\d+:\s+([\w\-/.]+)\s+\.+\s+(Passed|Failed)", ignore_case);
    re!(FAILED_SECTION, r"The following tests FAILED:\n((?:\s+\d+\s+-\s+[\w\-/.]+.*\n?)+)");
    re!(FAILED_LINE, r"\d+\s+-\s+([\w\-/.]+)");
    re!(SUMMARY, "", r"(\d+)%\s+tests\s+passed,\s+(\d+)\s+tests\s+failed\s+out\s+of\s+(\d+)", ignore_case);
    let mut map = StatusMap::new();
    for caps in RESULT.captures_iter(log) {
        let status = if group(&caps, 2).to_lowercase() == "passed" { TestStatus::Passed } else { TestStatus::Failed };
        map.insert(group(&caps, 1).to_string(), status);
    }
    if let Some(section) = FAILED_SECTION.captures(log) {
        for line in splitlines(group(&section, 1)) {
            if let Some(caps) = FAILED_LINE.captures(line) {
                map.insert(group(&caps, 1).to_string(), TestStatus::Failed);
            }
        }
    }
    if map.is_empty()
        && let Some(caps) = SUMMARY.captures(log)
    {
        let total = py_int(P, group(&caps, 3))?;
        let failed = py_int(P, group(&caps, 2))?;
        let mut synthetic = Synthetic::new(P);
        synthetic.add(&mut map, minus(total, failed), |i| format!("synthetic_pass_{i}"), TestStatus::Passed)?;
        synthetic.add(&mut map, count(failed), |i| format!("synthetic_fail_{i}"), TestStatus::Failed)?;
    }
    Ok(map)
}

/// `parse_log_gtest`: `[       OK ] Suite.Test`, `[  FAILED  ] …`, `[  SKIPPED ] …` lines (not
/// their summaries), else the `[==========] N tests from` / `[  PASSED  ] N` / `[  FAILED  ] N`
/// counts as made-up entries.
fn parse_log_gtest(log: &str, _: &ParseContext<'_>, _: Generation) -> Parsed {
    const P: &str = "parse_log_gtest";
    re!(OK, r"^\[\s*(OK|PASSED)\s*\]\s+([\w:/.]+)");
    re!(FAILED, r"^\[\s*FAILED\s*\]\s+([\w:/.]+)(?:\s+\(|$)");
    re!(SKIPPED, r"^\[\s*(SKIPPED|DISABLED)\s*\]\s+([\w:/.]+)");
    re!(COUNT, r"\d+\s+tests?[\.,]");
    re!(SUMMARY_TESTS, r"\[\s*=+\s*\]\s*(\d+)\s+tests?\s+from");
    re!(SUMMARY_PASSED, r"\[\s*PASSED\s*\]\s*(\d+)\s+tests?");
    re!(SUMMARY_FAILED, r"\[\s*FAILED\s*\]\s*(\d+)\s+tests?");
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        let line = pystr::strip(line);
        let summary = |name: &str| isdigit(name) || COUNT.is_match(line);
        if let Some(caps) = OK.captures(line) {
            let name = group(&caps, 2);
            if !summary(name) {
                map.insert(name.to_string(), TestStatus::Passed);
            }
            continue;
        }
        if let Some(caps) = FAILED.captures(line) {
            let name = group(&caps, 1);
            if !summary(name) {
                map.insert(name.to_string(), TestStatus::Failed);
            }
            continue;
        }
        if let Some(caps) = SKIPPED.captures(line) {
            let name = group(&caps, 2);
            if !summary(name) {
                map.insert(name.to_string(), TestStatus::Skipped);
            }
        }
    }
    if !map.is_empty() {
        return Ok(map);
    }
    if SUMMARY_TESTS.is_match(log) {
        let passed = SUMMARY_PASSED.captures(log).map(|c| py_int(P, group(&c, 1))).transpose()?.unwrap_or(0);
        let failed = SUMMARY_FAILED.captures(log).map(|c| py_int(P, group(&c, 1))).transpose()?.unwrap_or(0);
        let mut synthetic = Synthetic::new(P);
        synthetic.add(&mut map, count(passed), |i| format!("test_passed_{}", i + 1), TestStatus::Passed)?;
        synthetic.add(&mut map, count(failed), |i| format!("test_failed_{}", i + 1), TestStatus::Failed)?;
    }
    Ok(map)
}

/// `parse_log_catch2`: XML `<TestCase name=…>…<OverallResult success=…`, else text
/// `name ... PASSED|FAILED` lines, else the `test cases: N | P passed | F failed` or
/// `All tests passed (… N test cases)` counts as made-up entries.
fn parse_log_catch2(log: &str, _: &ParseContext<'_>, _: Generation) -> Parsed {
    const P: &str = "parse_log_catch2";
    re!(XML, "(?s)", r#"<TestCase\s+name="([^"]+)"[^>]*>.*?<OverallResult\s+success="(true|false)""#);
    re!(TEXT, "(?m)", r"^([^.:\[\]]+?)\s*\.\.\.\s*(PASSED|FAILED)", ignore_case);
    re!(NUMBERED, r"^\d+:");
    re!(SUMMARY, "", r"test cases:\s*(\d+)\s*\|\s*(\d+)\s*passed\s*\|\s*(\d+)\s*failed", ignore_case);
    re!(ALL_PASSED, "", r"All tests passed\s*\(.*?(\d+)\s+test cases?\)", ignore_case);
    let mut map = StatusMap::new();
    for caps in XML.captures_iter(log) {
        let status = if group(&caps, 2) == "true" { TestStatus::Passed } else { TestStatus::Failed };
        map.insert(group(&caps, 1).to_string(), status);
    }
    if !map.is_empty() {
        return Ok(map);
    }
    for caps in TEXT.captures_iter(log) {
        let name = pystr::strip(group(&caps, 1));
        if NUMBERED.is_match(name) || name.contains('[') || name.contains(']') {
            continue;
        }
        if !name.is_empty() {
            let status = if group(&caps, 2).to_uppercase() == "PASSED" { TestStatus::Passed } else { TestStatus::Failed };
            map.insert(name.to_string(), status);
        }
    }
    if !map.is_empty() {
        return Ok(map);
    }
    let mut synthetic = Synthetic::new(P);
    if let Some(caps) = SUMMARY.captures(log) {
        let passed = py_int(P, group(&caps, 2))?;
        let failed = py_int(P, group(&caps, 3))?;
        synthetic.add(&mut map, count(passed), |i| format!("test_passed_{}", i + 1), TestStatus::Passed)?;
        synthetic.add(&mut map, count(failed), |i| format!("test_failed_{}", i + 1), TestStatus::Failed)?;
        return Ok(map);
    }
    if let Some(caps) = ALL_PASSED.captures(log) {
        let passed = py_int(P, group(&caps, 1))?;
        synthetic.add(&mut map, count(passed), |i| format!("test_passed_{}", i + 1), TestStatus::Passed)?;
    }
    Ok(map)
}

/// `parse_log_boost_test`: `error in "name"` marks a test failed, `Entering test case|suite
/// "name"` passed unless failed; else `*** No errors detected` (with an `N test cases passed`
/// count, or one `boost_test_suite` entry) or `*** N failures detected`, as made-up entries.
fn parse_log_boost_test(log: &str, _: &ParseContext<'_>, _: Generation) -> Parsed {
    const P: &str = "parse_log_boost_test";
    re!(FAILURE, "", r#"error(?:\s+in)?\s+"([^"]+)""#, ignore_case);
    re!(ENTERING, r#"Entering test (?:case|suite) "([^"]+)""#);
    re!(NO_ERRORS, r"\*\*\* No errors detected");
    re!(PASSED_COUNT, "", r"(\d+)\s+test cases?\s+(?:out of \d+ )?passed", ignore_case);
    re!(FAILURE_SUMMARY, r"\*\*\* (\d+) failure(?:s)? detected");
    let mut map = StatusMap::new();
    let mut failed: HashSet<&str> = HashSet::new();
    for caps in FAILURE.captures_iter(log) {
        let name = group(&caps, 1);
        failed.insert(name);
        map.insert(name.to_string(), TestStatus::Failed);
    }
    // The reference walks a set here; the log's order stands in for its hash order.
    let mut seen: HashSet<&str> = HashSet::new();
    for caps in ENTERING.captures_iter(log) {
        let name = group(&caps, 1);
        if seen.insert(name) && !failed.contains(name) {
            map.insert(name.to_string(), TestStatus::Passed);
        }
    }
    if !map.is_empty() {
        return Ok(map);
    }
    let mut synthetic = Synthetic::new(P);
    if NO_ERRORS.is_match(log) {
        if let Some(caps) = PASSED_COUNT.captures(log) {
            let passed = py_int(P, group(&caps, 1))?;
            synthetic.add(&mut map, count(passed), |i| format!("test_passed_{}", i + 1), TestStatus::Passed)?;
        } else {
            map.insert("boost_test_suite".to_string(), TestStatus::Passed);
        }
        return Ok(map);
    }
    if let Some(caps) = FAILURE_SUMMARY.captures(log) {
        let failures = py_int(P, group(&caps, 1))?;
        synthetic.add(&mut map, count(failures), |i| format!("test_failed_{}", i + 1), TestStatus::Failed)?;
    }
    Ok(map)
}

/// `AirSim13448700`: every `[  PASSED  ] name`, then every `[  FAILED  ] name`; else one
/// `AirLibUnitTests.Main` entry where `Running N test` appears.
fn airsim(log: &str, _: &ParseContext<'_>, _: Generation) -> Parsed {
    re!(PASSED, r"\[\s+PASSED\s+\]\s+([\w.]+)");
    re!(FAILED, r"\[\s+FAILED\s+\]\s+([\w.]+)");
    re!(RUNNING, r"Running (\d+) test");
    let mut map = StatusMap::new();
    for caps in PASSED.captures_iter(log) {
        map.insert(group(&caps, 1).to_string(), TestStatus::Passed);
    }
    for caps in FAILED.captures_iter(log) {
        map.insert(group(&caps, 1).to_string(), TestStatus::Failed);
    }
    if map.is_empty() && RUNNING.is_match(log) {
        map.insert("AirLibUnitTests.Main".to_string(), TestStatus::Passed);
    }
    Ok(map)
}

/// `Aria2b4fd7cb1`: CppUnit's `OK (N)` and `FAILURES!!! … Tests run: N, Failures: F` counts, as
/// made-up entries.
fn aria2(log: &str, _: &ParseContext<'_>, _: Generation) -> Parsed {
    const P: &str = "Aria2b4fd7cb1";
    re!(OK, r"OK \((\d+)\)");
    re!(FAILURES, "(?s)", r"FAILURES!!!.*?Tests run: (\d+),\s+Failures: (\d+)");
    let mut map = StatusMap::new();
    let mut synthetic = Synthetic::new(P);
    if let Some(caps) = OK.captures(log) {
        let tests = py_int(P, group(&caps, 1))?;
        synthetic.add(&mut map, count(tests), |i| format!("test_{i}"), TestStatus::Passed)?;
    }
    if let Some(caps) = FAILURES.captures(log) {
        let total = py_int(P, group(&caps, 1))?;
        let failures = py_int(P, group(&caps, 2))?;
        synthetic.add(&mut map, minus(total, failures), |i| format!("test_{i}"), TestStatus::Passed)?;
        synthetic.add(&mut map, count(failures), |i| format!("test_fail_{i}"), TestStatus::Failed)?;
    }
    Ok(map)
}

/// A strict XML reader with expat's (namespace-mode) acceptance, for `parse_log_gradle_junit_xml`.
///
/// A copy of `c.rs`'s reader (which serves doctest's reports, a document without a prolog) that
/// also reads the XML declaration as expat 2.5 does, keeps every element's tag and plain
/// attributes, and stops at a `<!DOCTYPE`, whose DTD (entities, attribute defaults) expat would
/// apply and this reader does not.
mod xml {
    use std::collections::HashSet;

    /// Why a document is not read.
    #[derive(Debug)]
    pub(super) enum Rejected {
        /// expat rejects it (`xml.etree.ElementTree.ParseError` in the reference); the reason is
        /// for debugging, the parser only skips the document.
        Malformed(#[allow(dead_code)] String),
        /// It has a document type declaration.
        Doctype,
    }

    impl From<String> for Rejected {
        fn from(reason: String) -> Self {
            Rejected::Malformed(reason)
        }
    }

    impl From<&str> for Rejected {
        fn from(reason: &str) -> Self {
            Rejected::Malformed(reason.to_string())
        }
    }

    /// One element, in document (pre-)order.
    #[derive(Debug)]
    pub(super) struct Element {
        /// Its tag as `xml.etree` names it, where that is a plain name (`None`: `{uri}local`).
        pub(super) tag: Option<String>,
        /// Its un-prefixed attributes (the keys `Element.get` finds), in document order.
        pub(super) attributes: Vec<(String, String)>,
        /// The index of its parent element.
        pub(super) parent: Option<usize>,
        /// One past the index of its last descendant.
        pub(super) end: usize,
    }

    impl Element {
        /// `element.get(name)`.
        pub(super) fn attribute(&self, name: &str) -> Option<&str> {
            self.attributes.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
        }
    }

    const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
    const XMLNS_NS: &str = "http://www.w3.org/2000/xmlns/";

    /// An element whose end tag is still to come.
    struct Open<'a> {
        raw: &'a str,
        index: usize,
        bindings: usize,
    }

    /// A qualified name as written: `prefix:local` or `local`.
    #[derive(Clone, Copy)]
    struct QName<'a> {
        raw: &'a str,
        prefix: Option<&'a str>,
        local: &'a str,
    }

    /// Reads `doc`, which starts with an XML declaration, into its elements, or says why expat
    /// would reject it.
    pub(super) fn parse(doc: &str) -> Result<Vec<Element>, Rejected> {
        let mut r = Reader { s: doc, pos: 0 };
        if !r.eat("<?xml") {
            return Err("no XML declaration".into());
        }
        let Some(length) = r.rest().find("?>") else { return Err("unclosed XML declaration".into()) };
        let declaration = r.rest().get(..length).unwrap_or_default();
        xml_declaration(declaration)?;
        r.pos += length + 2;
        let mut elements: Vec<Element> = Vec::new();
        let mut open: Vec<Open<'_>> = Vec::new();
        // In-scope namespace declarations, innermost last (`None`: the default namespace).
        let mut bindings: Vec<(Option<&str>, String)> = Vec::new();
        let mut root_seen = false;
        loop {
            if open.is_empty() {
                // Outside the root element: white space, comments and PIs; one element.
                r.skip_space();
                if r.at_end() {
                    return if root_seen { Ok(elements) } else { Err("no element found".into()) };
                }
                if !root_seen && r.rest().starts_with("<!DOCTYPE") {
                    return Err(Rejected::Doctype);
                }
                if r.eat("<!--") {
                    r.comment()?;
                } else if r.eat("<?") {
                    r.processing_instruction()?;
                } else if !root_seen && r.eat("<") {
                    root_seen = true;
                    r.start_tag(&mut elements, &mut open, &mut bindings)?;
                } else {
                    return Err(format!("junk after document element at byte {}", r.pos).into());
                }
                continue;
            }
            match r.peek() {
                None => return Err("no element found (unclosed element)".into()),
                Some('<') => {
                    if r.eat("</") {
                        let name = r.qname()?;
                        r.skip_space();
                        if !r.eat(">") {
                            return Err(format!("invalid end tag at byte {}", r.pos).into());
                        }
                        let Some(top) = open.pop() else { return Err("end tag outside any element".into()) };
                        if top.raw != name.raw {
                            return Err(format!("mismatched tag: </{}> closes <{}>", name.raw, top.raw).into());
                        }
                        bindings.truncate(top.bindings);
                        let count = elements.len();
                        if let Some(e) = elements.get_mut(top.index) {
                            e.end = count;
                        }
                    } else if r.eat("<!--") {
                        r.comment()?;
                    } else if r.eat("<?") {
                        r.processing_instruction()?;
                    } else if r.eat("<![CDATA[") {
                        r.cdata()?;
                    } else if r.eat("<!") {
                        return Err(format!("invalid markup declaration at byte {}", r.pos).into());
                    } else {
                        r.eat("<");
                        r.start_tag(&mut elements, &mut open, &mut bindings)?;
                    }
                }
                Some('&') => {
                    r.eat("&");
                    r.reference()?;
                }
                Some(']') if r.rest().starts_with("]]>") => return Err(format!("`]]>` in content at byte {}", r.pos).into()),
                Some(c) => {
                    if !is_char(c) {
                        return Err(format!("invalid character {c:?} at byte {}", r.pos).into());
                    }
                    r.bump();
                }
            }
        }
    }

    /// The inside of `<?xml …?>` as expat 2.5 reads a document's declaration
    /// (`doParseXmlDecl`): `version`, then optionally `encoding` (a value starting with a letter;
    /// pyexpat reads a `str` as UTF-8 whatever it says) and `standalone` (`yes`/`no`), values of
    /// `[A-Za-z0-9._-]` only.
    fn xml_declaration(inside: &str) -> Result<(), String> {
        let bad = || format!("XML declaration not well-formed: <?xml{inside}?>");
        let mut pos = 0;
        let Some((name, _)) = pseudo_attribute(inside.as_bytes(), &mut pos).ok_or_else(bad)? else { return Err(bad()) };
        if name != b"version" {
            return Err(bad());
        }
        let mut next = pseudo_attribute(inside.as_bytes(), &mut pos).ok_or_else(bad)?;
        if let Some((b"encoding", value)) = next {
            if !value.first().is_some_and(u8::is_ascii_alphabetic) {
                return Err(bad());
            }
            next = pseudo_attribute(inside.as_bytes(), &mut pos).ok_or_else(bad)?;
        }
        let Some((name, value)) = next else { return Ok(()) };
        if name != b"standalone" || (value != b"yes" && value != b"no") {
            return Err(bad());
        }
        while inside.as_bytes().get(pos).is_some_and(|&b| is_space(char::from(b))) {
            pos += 1;
        }
        if pos != inside.len() { Err(bad()) } else { Ok(()) }
    }

    /// expat's `parsePseudoAttribute`: `Some(None)` at the end, `Some(Some((name, value)))`, or
    /// `None` where the declaration is not well-formed.
    #[allow(clippy::type_complexity)]
    fn pseudo_attribute<'b>(s: &'b [u8], pos: &mut usize) -> Option<Option<(&'b [u8], &'b [u8])>> {
        let space = |p: usize| s.get(p).is_some_and(|&b| is_space(char::from(b)));
        if *pos == s.len() {
            return Some(None);
        }
        if !space(*pos) {
            return None;
        }
        while space(*pos) {
            *pos += 1;
        }
        if *pos == s.len() {
            return Some(None);
        }
        let start = *pos;
        let end = loop {
            let c = *s.get(*pos)?;
            if !c.is_ascii() {
                return None;
            }
            if c == b'=' {
                break *pos;
            }
            if is_space(char::from(c)) {
                let end = *pos;
                while space(*pos) {
                    *pos += 1;
                }
                if s.get(*pos) != Some(&b'=') {
                    return None;
                }
                break end;
            }
            *pos += 1;
        };
        if end == start {
            return None;
        }
        *pos += 1;
        while space(*pos) {
            *pos += 1;
        }
        let open = *s.get(*pos).filter(|&&q| q == b'"' || q == b'\'')?;
        *pos += 1;
        let value_start = *pos;
        loop {
            let c = *s.get(*pos)?;
            if c == open {
                break;
            }
            if !(c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_')) {
                return None;
            }
            *pos += 1;
        }
        let value = s.get(value_start..*pos)?;
        *pos += 1;
        Some(Some((s.get(start..end)?, value)))
    }

    /// XML 1.0's `Char`.
    fn is_char(c: char) -> bool {
        matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..='\u{10ffff}')
    }

    /// XML's `S`.
    fn is_space(c: char) -> bool {
        matches!(c, ' ' | '\t' | '\r' | '\n')
    }

    fn in_table(table: &[(u32, u32)], c: char) -> bool {
        let c = u32::from(c);
        let i = table.partition_point(|&(_, hi)| hi < c);
        table.get(i).is_some_and(|&(lo, _)| lo <= c)
    }

    fn is_name_start(c: char) -> bool {
        in_table(NAME_START, c)
    }

    fn is_name_char(c: char) -> bool {
        in_table(NAME_CHAR, c)
    }

    /// Resolves a prefix in scope (`xml` is always bound).
    fn resolve<'b>(bindings: &'b [(Option<&str>, String)], prefix: Option<&str>) -> Option<&'b str> {
        if prefix == Some("xml") {
            return Some(XML_NS);
        }
        bindings.iter().rev().find(|(p, _)| *p == prefix).map(|(_, uri)| uri.as_str())
    }

    struct Reader<'a> {
        s: &'a str,
        pos: usize,
    }

    impl<'a> Reader<'a> {
        fn rest(&self) -> &'a str {
            self.s.get(self.pos..).unwrap_or_default()
        }

        fn at_end(&self) -> bool {
            self.pos >= self.s.len()
        }

        fn peek(&self) -> Option<char> {
            self.rest().chars().next()
        }

        fn bump(&mut self) -> Option<char> {
            let c = self.peek()?;
            self.pos += c.len_utf8();
            Some(c)
        }

        fn eat(&mut self, literal: &str) -> bool {
            if self.rest().starts_with(literal) {
                self.pos += literal.len();
                true
            } else {
                false
            }
        }

        /// Skips `S`; whether there was any.
        fn skip_space(&mut self) -> bool {
            let start = self.pos;
            while self.peek().is_some_and(is_space) {
                self.bump();
            }
            self.pos > start
        }

        /// An `NCName` (a name without `:`).
        fn ncname(&mut self) -> Result<&'a str, String> {
            let start = self.pos;
            match self.peek() {
                Some(c) if is_name_start(c) => {
                    self.bump();
                }
                other => return Err(format!("a name cannot start with {other:?} (byte {start})")),
            }
            while self.peek().is_some_and(is_name_char) {
                self.bump();
            }
            Ok(self.s.get(start..self.pos).unwrap_or_default())
        }

        /// A `QName`: at most one `:`, a name start after it.
        fn qname(&mut self) -> Result<QName<'a>, String> {
            let start = self.pos;
            let first = self.ncname()?;
            if self.eat(":") {
                let local = self.ncname()?;
                if self.peek() == Some(':') {
                    return Err(format!("a second `:` in a name (byte {})", self.pos));
                }
                return Ok(QName { raw: self.s.get(start..self.pos).unwrap_or_default(), prefix: Some(first), local });
            }
            Ok(QName { raw: first, prefix: None, local: first })
        }

        /// After `<!--`.
        fn comment(&mut self) -> Result<(), String> {
            loop {
                if self.eat("--") {
                    return if self.eat(">") { Ok(()) } else { Err(format!("`--` inside a comment (byte {})", self.pos)) };
                }
                match self.bump() {
                    None => return Err("unclosed comment".into()),
                    Some(c) if !is_char(c) => return Err(format!("invalid character {c:?} in a comment")),
                    Some(_) => {}
                }
            }
        }

        /// After `<?`.
        fn processing_instruction(&mut self) -> Result<(), String> {
            let target = self.ncname()?;
            if target.eq_ignore_ascii_case("xml") {
                return Err("an XML declaration (or a `<?xml` PI) not at the start".into());
            }
            if self.eat("?>") {
                return Ok(());
            }
            if !self.skip_space() {
                return Err(format!("invalid processing instruction (byte {})", self.pos));
            }
            loop {
                if self.eat("?>") {
                    return Ok(());
                }
                match self.bump() {
                    None => return Err("unclosed processing instruction".into()),
                    Some(c) if !is_char(c) => return Err(format!("invalid character {c:?} in a processing instruction")),
                    Some(_) => {}
                }
            }
        }

        /// After `<![CDATA[`.
        fn cdata(&mut self) -> Result<(), String> {
            loop {
                if self.eat("]]>") {
                    return Ok(());
                }
                match self.bump() {
                    None => return Err("unclosed CDATA section".into()),
                    Some(c) if !is_char(c) => return Err(format!("invalid character {c:?} in a CDATA section")),
                    Some(_) => {}
                }
            }
        }

        /// After `&`: a character or predefined entity reference.
        fn reference(&mut self) -> Result<char, String> {
            let start = self.pos;
            let code = if self.eat("#x") {
                self.number(16)?
            } else if self.eat("#") {
                self.number(10)?
            } else {
                let name = self.ncname()?;
                if !self.eat(";") {
                    return Err(format!("unterminated entity reference (byte {start})"));
                }
                return match name {
                    "amp" => Ok('&'),
                    "lt" => Ok('<'),
                    "gt" => Ok('>'),
                    "apos" => Ok('\''),
                    "quot" => Ok('"'),
                    _ => Err(format!("undefined entity &{name};")),
                };
            };
            char::from_u32(code).filter(|&c| is_char(c)).ok_or_else(|| format!("reference to invalid character number {code} (byte {start})"))
        }

        /// Digits of a character reference, then `;`; out-of-range values saturate (and fail).
        fn number(&mut self, radix: u32) -> Result<u32, String> {
            let mut value: u32 = 0;
            let mut digits = 0;
            while let Some(d) = self.peek().and_then(|c| c.to_digit(radix)) {
                self.bump();
                digits += 1;
                value = value.saturating_mul(radix).saturating_add(d);
            }
            if digits == 0 || !self.eat(";") {
                return Err(format!("invalid character reference (byte {})", self.pos));
            }
            Ok(value)
        }

        /// An attribute value after its opening quote, normalised as expat does.
        fn attribute_value(&mut self, quote: char) -> Result<String, String> {
            let mut value = String::new();
            loop {
                match self.bump() {
                    None => return Err("unclosed attribute value".into()),
                    Some(c) if c == quote => return Ok(value),
                    Some('<') => return Err(format!("`<` in an attribute value (byte {})", self.pos)),
                    Some('&') => value.push(self.reference()?),
                    Some('\r') => {
                        self.eat("\n");
                        value.push(' ');
                    }
                    Some('\n' | '\t') => value.push(' '),
                    Some(c) if !is_char(c) => return Err(format!("invalid character {c:?} in an attribute value")),
                    Some(c) => value.push(c),
                }
            }
        }

        /// After `<`: a start tag (or an empty-element tag), its namespaces checked and bound.
        fn start_tag(&mut self, elements: &mut Vec<Element>, open: &mut Vec<Open<'a>>, bindings: &mut Vec<(Option<&'a str>, String)>) -> Result<(), String> {
            let name = self.qname()?;
            let mut attributes: Vec<(QName<'a>, String)> = Vec::new();
            let mut seen: HashSet<&str> = HashSet::new();
            let empty = loop {
                let spaced = self.skip_space();
                match self.peek() {
                    Some('>') => {
                        self.bump();
                        break false;
                    }
                    Some('/') => {
                        self.bump();
                        if self.eat(">") {
                            break true;
                        }
                        return Err(format!("`/` not followed by `>` (byte {})", self.pos));
                    }
                    Some(_) if spaced => {
                        let attribute = self.qname()?;
                        self.skip_space();
                        if !self.eat("=") {
                            return Err(format!("attribute {} without a value", attribute.raw));
                        }
                        self.skip_space();
                        let quote = match self.bump() {
                            Some(q @ ('"' | '\'')) => q,
                            _ => return Err(format!("unquoted value for attribute {}", attribute.raw)),
                        };
                        let value = self.attribute_value(quote)?;
                        if !seen.insert(attribute.raw) {
                            return Err(format!("duplicate attribute {}", attribute.raw));
                        }
                        attributes.push((attribute, value));
                    }
                    _ => return Err(format!("invalid start tag (byte {})", self.pos)),
                }
            };

            // Namespace declarations first: they hold for the whole tag.
            let mark = bindings.len();
            for (attribute, uri) in &attributes {
                let declared = match (attribute.prefix, attribute.local) {
                    (None, "xmlns") => None,
                    (Some("xmlns"), prefix) => Some(prefix),
                    _ => continue,
                };
                if declared.is_some() && uri.is_empty() {
                    return Err(format!("{} must not undeclare a prefix", attribute.raw));
                }
                if declared == Some("xmlns") {
                    return Err("the prefix xmlns must not be declared".into());
                }
                if (declared == Some("xml")) != (uri == XML_NS) || uri == XMLNS_NS {
                    return Err(format!("{} binds a reserved prefix or namespace", attribute.raw));
                }
                if uri.contains('}') {
                    return Err(format!("namespace name {uri:?} holds the separator `}}` (syntax error)"));
                }
                bindings.push((declared, uri.clone()));
            }

            let namespaced = match name.prefix {
                Some(prefix) => {
                    resolve(bindings, Some(prefix)).ok_or_else(|| format!("unbound prefix in <{}>", name.raw))?;
                    true
                }
                None => resolve(bindings, None).is_some_and(|uri| !uri.is_empty()),
            };
            let mut element = Element {
                tag: (!namespaced).then(|| name.local.to_string()),
                attributes: Vec::new(),
                parent: open.last().map(|o| o.index),
                end: 0,
            };
            let mut expanded: HashSet<(&str, &str)> = HashSet::new();
            for (attribute, value) in attributes {
                match (attribute.prefix, attribute.local) {
                    (None, "xmlns") | (Some("xmlns"), _) => {}
                    (Some(prefix), local) => {
                        let uri = resolve(bindings, Some(prefix)).ok_or_else(|| format!("unbound prefix in attribute {}", attribute.raw))?;
                        if !expanded.insert((uri, local)) {
                            return Err(format!("duplicate attribute {{{uri}}}{local}"));
                        }
                    }
                    (None, local) => element.attributes.push((local.to_string(), value)),
                }
            }

            let index = elements.len();
            elements.push(element);
            if empty {
                let count = elements.len();
                if let Some(e) = elements.get_mut(index) {
                    e.end = count;
                }
                bindings.truncate(mark);
            } else {
                open.push(Open { raw: name.raw, index, bindings: mark });
            }
            Ok(())
        }
    }

    /// expat 2.5's name-start characters (namespace mode: no `:`), from pyexpat itself.
    const NAME_START: &[(u32, u32)] = &[
        (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A), (0xC0, 0xD6), (0xD8, 0xF6), (0xF8, 0x131), (0x134, 0x13E),
        (0x141, 0x148), (0x14A, 0x17E), (0x180, 0x1C3), (0x1CD, 0x1F0), (0x1F4, 0x1F5), (0x1FA, 0x217),
        (0x250, 0x2A8), (0x2BB, 0x2C1), (0x386, 0x386), (0x388, 0x38A), (0x38C, 0x38C), (0x38E, 0x3A1),
        (0x3A3, 0x3CE), (0x3D0, 0x3D6), (0x3DA, 0x3DA), (0x3DC, 0x3DC), (0x3DE, 0x3DE), (0x3E0, 0x3E0),
        (0x3E2, 0x3F3), (0x401, 0x40C), (0x40E, 0x44F), (0x451, 0x45C), (0x45E, 0x481), (0x490, 0x4C4),
        (0x4C7, 0x4C8), (0x4CB, 0x4CC), (0x4D0, 0x4EB), (0x4EE, 0x4F5), (0x4F8, 0x4F9), (0x531, 0x556),
        (0x559, 0x559), (0x561, 0x586), (0x5D0, 0x5EA), (0x5F0, 0x5F2), (0x621, 0x63A), (0x641, 0x64A),
        (0x671, 0x6B7), (0x6BA, 0x6BE), (0x6C0, 0x6CE), (0x6D0, 0x6D3), (0x6D5, 0x6D5), (0x6E5, 0x6E6),
        (0x905, 0x939), (0x93D, 0x93D), (0x958, 0x961), (0x985, 0x98C), (0x98F, 0x990), (0x993, 0x9A8),
        (0x9AA, 0x9B0), (0x9B2, 0x9B2), (0x9B6, 0x9B9), (0x9DC, 0x9DD), (0x9DF, 0x9E1), (0x9F0, 0x9F1),
        (0xA05, 0xA0A), (0xA0F, 0xA10), (0xA13, 0xA28), (0xA2A, 0xA30), (0xA32, 0xA33), (0xA35, 0xA36),
        (0xA38, 0xA39), (0xA59, 0xA5C), (0xA5E, 0xA5E), (0xA72, 0xA74), (0xA85, 0xA8B), (0xA8D, 0xA8D),
        (0xA8F, 0xA91), (0xA93, 0xAA8), (0xAAA, 0xAB0), (0xAB2, 0xAB3), (0xAB5, 0xAB9), (0xABD, 0xABD),
        (0xAE0, 0xAE0), (0xB05, 0xB0C), (0xB0F, 0xB10), (0xB13, 0xB28), (0xB2A, 0xB30), (0xB32, 0xB33),
        (0xB36, 0xB39), (0xB3D, 0xB3D), (0xB5C, 0xB5D), (0xB5F, 0xB61), (0xB85, 0xB8A), (0xB8E, 0xB90),
        (0xB92, 0xB95), (0xB99, 0xB9A), (0xB9C, 0xB9C), (0xB9E, 0xB9F), (0xBA3, 0xBA4), (0xBA8, 0xBAA),
        (0xBAE, 0xBB5), (0xBB7, 0xBB9), (0xC05, 0xC0C), (0xC0E, 0xC10), (0xC12, 0xC28), (0xC2A, 0xC33),
        (0xC35, 0xC39), (0xC60, 0xC61), (0xC85, 0xC8C), (0xC8E, 0xC90), (0xC92, 0xCA8), (0xCAA, 0xCB3),
        (0xCB5, 0xCB9), (0xCDE, 0xCDE), (0xCE0, 0xCE1), (0xD05, 0xD0C), (0xD0E, 0xD10), (0xD12, 0xD28),
        (0xD2A, 0xD39), (0xD60, 0xD61), (0xE01, 0xE2E), (0xE30, 0xE30), (0xE32, 0xE33), (0xE40, 0xE45),
        (0xE81, 0xE82), (0xE84, 0xE84), (0xE87, 0xE88), (0xE8A, 0xE8A), (0xE8D, 0xE8D), (0xE94, 0xE97),
        (0xE99, 0xE9F), (0xEA1, 0xEA3), (0xEA5, 0xEA5), (0xEA7, 0xEA7), (0xEAA, 0xEAB), (0xEAD, 0xEAE),
        (0xEB0, 0xEB0), (0xEB2, 0xEB3), (0xEBD, 0xEBD), (0xEC0, 0xEC4), (0xF40, 0xF47), (0xF49, 0xF69),
        (0x10A0, 0x10C5), (0x10D0, 0x10F6), (0x1100, 0x1100), (0x1102, 0x1103), (0x1105, 0x1107),
        (0x1109, 0x1109), (0x110B, 0x110C), (0x110E, 0x1112), (0x113C, 0x113C), (0x113E, 0x113E),
        (0x1140, 0x1140), (0x114C, 0x114C), (0x114E, 0x114E), (0x1150, 0x1150), (0x1154, 0x1155),
        (0x1159, 0x1159), (0x115F, 0x1161), (0x1163, 0x1163), (0x1165, 0x1165), (0x1167, 0x1167),
        (0x1169, 0x1169), (0x116D, 0x116E), (0x1172, 0x1173), (0x1175, 0x1175), (0x119E, 0x119E),
        (0x11A8, 0x11A8), (0x11AB, 0x11AB), (0x11AE, 0x11AF), (0x11B7, 0x11B8), (0x11BA, 0x11BA),
        (0x11BC, 0x11C2), (0x11EB, 0x11EB), (0x11F0, 0x11F0), (0x11F9, 0x11F9), (0x1E00, 0x1E9B),
        (0x1EA0, 0x1EF9), (0x1F00, 0x1F15), (0x1F18, 0x1F1D), (0x1F20, 0x1F45), (0x1F48, 0x1F4D),
        (0x1F50, 0x1F57), (0x1F59, 0x1F59), (0x1F5B, 0x1F5B), (0x1F5D, 0x1F5D), (0x1F5F, 0x1F7D),
        (0x1F80, 0x1FB4), (0x1FB6, 0x1FBC), (0x1FBE, 0x1FBE), (0x1FC2, 0x1FC4), (0x1FC6, 0x1FCC),
        (0x1FD0, 0x1FD3), (0x1FD6, 0x1FDB), (0x1FE0, 0x1FEC), (0x1FF2, 0x1FF4), (0x1FF6, 0x1FFC),
        (0x2126, 0x2126), (0x212A, 0x212B), (0x212E, 0x212E), (0x2180, 0x2182), (0x3007, 0x3007),
        (0x3021, 0x3029), (0x3041, 0x3094), (0x30A1, 0x30FA), (0x3105, 0x312C), (0x4E00, 0x9FA5),
        (0xAC00, 0xD7A3),
    ];

    /// expat 2.5's name characters (namespace mode: no `:`), from pyexpat itself.
    const NAME_CHAR: &[(u32, u32)] = &[
        (0x2D, 0x2E), (0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A), (0xB7, 0xB7), (0xC0, 0xD6),
        (0xD8, 0xF6), (0xF8, 0x131), (0x134, 0x13E), (0x141, 0x148), (0x14A, 0x17E), (0x180, 0x1C3),
        (0x1CD, 0x1F0), (0x1F4, 0x1F5), (0x1FA, 0x217), (0x250, 0x2A8), (0x2BB, 0x2C1), (0x2D0, 0x2D1),
        (0x300, 0x345), (0x360, 0x361), (0x386, 0x38A), (0x38C, 0x38C), (0x38E, 0x3A1), (0x3A3, 0x3CE),
        (0x3D0, 0x3D6), (0x3DA, 0x3DA), (0x3DC, 0x3DC), (0x3DE, 0x3DE), (0x3E0, 0x3E0), (0x3E2, 0x3F3),
        (0x401, 0x40C), (0x40E, 0x44F), (0x451, 0x45C), (0x45E, 0x481), (0x483, 0x486), (0x490, 0x4C4),
        (0x4C7, 0x4C8), (0x4CB, 0x4CC), (0x4D0, 0x4EB), (0x4EE, 0x4F5), (0x4F8, 0x4F9), (0x531, 0x556),
        (0x559, 0x559), (0x561, 0x586), (0x591, 0x5A1), (0x5A3, 0x5B9), (0x5BB, 0x5BD), (0x5BF, 0x5BF),
        (0x5C1, 0x5C2), (0x5C4, 0x5C4), (0x5D0, 0x5EA), (0x5F0, 0x5F2), (0x621, 0x63A), (0x640, 0x652),
        (0x660, 0x669), (0x670, 0x6B7), (0x6BA, 0x6BE), (0x6C0, 0x6CE), (0x6D0, 0x6D3), (0x6D5, 0x6E8),
        (0x6EA, 0x6ED), (0x6F0, 0x6F9), (0x901, 0x903), (0x905, 0x939), (0x93C, 0x94D), (0x951, 0x954),
        (0x958, 0x963), (0x966, 0x96F), (0x981, 0x983), (0x985, 0x98C), (0x98F, 0x990), (0x993, 0x9A8),
        (0x9AA, 0x9B0), (0x9B2, 0x9B2), (0x9B6, 0x9B9), (0x9BC, 0x9BC), (0x9BE, 0x9C4), (0x9C7, 0x9C8),
        (0x9CB, 0x9CD), (0x9D7, 0x9D7), (0x9DC, 0x9DD), (0x9DF, 0x9E3), (0x9E6, 0x9F1), (0xA02, 0xA02),
        (0xA05, 0xA0A), (0xA0F, 0xA10), (0xA13, 0xA28), (0xA2A, 0xA30), (0xA32, 0xA33), (0xA35, 0xA36),
        (0xA38, 0xA39), (0xA3C, 0xA3C), (0xA3E, 0xA42), (0xA47, 0xA48), (0xA4B, 0xA4D), (0xA59, 0xA5C),
        (0xA5E, 0xA5E), (0xA66, 0xA74), (0xA81, 0xA83), (0xA85, 0xA8B), (0xA8D, 0xA8D), (0xA8F, 0xA91),
        (0xA93, 0xAA8), (0xAAA, 0xAB0), (0xAB2, 0xAB3), (0xAB5, 0xAB9), (0xABC, 0xAC5), (0xAC7, 0xAC9),
        (0xACB, 0xACD), (0xAE0, 0xAE0), (0xAE6, 0xAEF), (0xB01, 0xB03), (0xB05, 0xB0C), (0xB0F, 0xB10),
        (0xB13, 0xB28), (0xB2A, 0xB30), (0xB32, 0xB33), (0xB36, 0xB39), (0xB3C, 0xB43), (0xB47, 0xB48),
        (0xB4B, 0xB4D), (0xB56, 0xB57), (0xB5C, 0xB5D), (0xB5F, 0xB61), (0xB66, 0xB6F), (0xB82, 0xB83),
        (0xB85, 0xB8A), (0xB8E, 0xB90), (0xB92, 0xB95), (0xB99, 0xB9A), (0xB9C, 0xB9C), (0xB9E, 0xB9F),
        (0xBA3, 0xBA4), (0xBA8, 0xBAA), (0xBAE, 0xBB5), (0xBB7, 0xBB9), (0xBBE, 0xBC2), (0xBC6, 0xBC8),
        (0xBCA, 0xBCD), (0xBD7, 0xBD7), (0xBE7, 0xBEF), (0xC01, 0xC03), (0xC05, 0xC0C), (0xC0E, 0xC10),
        (0xC12, 0xC28), (0xC2A, 0xC33), (0xC35, 0xC39), (0xC3E, 0xC44), (0xC46, 0xC48), (0xC4A, 0xC4D),
        (0xC55, 0xC56), (0xC60, 0xC61), (0xC66, 0xC6F), (0xC82, 0xC83), (0xC85, 0xC8C), (0xC8E, 0xC90),
        (0xC92, 0xCA8), (0xCAA, 0xCB3), (0xCB5, 0xCB9), (0xCBE, 0xCC4), (0xCC6, 0xCC8), (0xCCA, 0xCCD),
        (0xCD5, 0xCD6), (0xCDE, 0xCDE), (0xCE0, 0xCE1), (0xCE6, 0xCEF), (0xD02, 0xD03), (0xD05, 0xD0C),
        (0xD0E, 0xD10), (0xD12, 0xD28), (0xD2A, 0xD39), (0xD3E, 0xD43), (0xD46, 0xD48), (0xD4A, 0xD4D),
        (0xD57, 0xD57), (0xD60, 0xD61), (0xD66, 0xD6F), (0xE01, 0xE2E), (0xE30, 0xE3A), (0xE40, 0xE4E),
        (0xE50, 0xE59), (0xE81, 0xE82), (0xE84, 0xE84), (0xE87, 0xE88), (0xE8A, 0xE8A), (0xE8D, 0xE8D),
        (0xE94, 0xE97), (0xE99, 0xE9F), (0xEA1, 0xEA3), (0xEA5, 0xEA5), (0xEA7, 0xEA7), (0xEAA, 0xEAB),
        (0xEAD, 0xEAE), (0xEB0, 0xEB9), (0xEBB, 0xEBD), (0xEC0, 0xEC4), (0xEC6, 0xEC6), (0xEC8, 0xECD),
        (0xED0, 0xED9), (0xF18, 0xF19), (0xF20, 0xF29), (0xF35, 0xF35), (0xF37, 0xF37), (0xF39, 0xF39),
        (0xF3E, 0xF47), (0xF49, 0xF69), (0xF71, 0xF84), (0xF86, 0xF8B), (0xF90, 0xF95), (0xF97, 0xF97),
        (0xF99, 0xFAD), (0xFB1, 0xFB7), (0xFB9, 0xFB9), (0x10A0, 0x10C5), (0x10D0, 0x10F6), (0x1100, 0x1100),
        (0x1102, 0x1103), (0x1105, 0x1107), (0x1109, 0x1109), (0x110B, 0x110C), (0x110E, 0x1112),
        (0x113C, 0x113C), (0x113E, 0x113E), (0x1140, 0x1140), (0x114C, 0x114C), (0x114E, 0x114E),
        (0x1150, 0x1150), (0x1154, 0x1155), (0x1159, 0x1159), (0x115F, 0x1161), (0x1163, 0x1163),
        (0x1165, 0x1165), (0x1167, 0x1167), (0x1169, 0x1169), (0x116D, 0x116E), (0x1172, 0x1173),
        (0x1175, 0x1175), (0x119E, 0x119E), (0x11A8, 0x11A8), (0x11AB, 0x11AB), (0x11AE, 0x11AF),
        (0x11B7, 0x11B8), (0x11BA, 0x11BA), (0x11BC, 0x11C2), (0x11EB, 0x11EB), (0x11F0, 0x11F0),
        (0x11F9, 0x11F9), (0x1E00, 0x1E9B), (0x1EA0, 0x1EF9), (0x1F00, 0x1F15), (0x1F18, 0x1F1D),
        (0x1F20, 0x1F45), (0x1F48, 0x1F4D), (0x1F50, 0x1F57), (0x1F59, 0x1F59), (0x1F5B, 0x1F5B),
        (0x1F5D, 0x1F5D), (0x1F5F, 0x1F7D), (0x1F80, 0x1FB4), (0x1FB6, 0x1FBC), (0x1FBE, 0x1FBE),
        (0x1FC2, 0x1FC4), (0x1FC6, 0x1FCC), (0x1FD0, 0x1FD3), (0x1FD6, 0x1FDB), (0x1FE0, 0x1FEC),
        (0x1FF2, 0x1FF4), (0x1FF6, 0x1FFC), (0x20D0, 0x20DC), (0x20E1, 0x20E1), (0x2126, 0x2126),
        (0x212A, 0x212B), (0x212E, 0x212E), (0x2180, 0x2182), (0x3005, 0x3005), (0x3007, 0x3007),
        (0x3021, 0x302F), (0x3031, 0x3035), (0x3041, 0x3094), (0x3099, 0x309A), (0x309D, 0x309E),
        (0x30A1, 0x30FA), (0x30FC, 0x30FE), (0x3105, 0x312C), (0x4E00, 0x9FA5), (0xAC00, 0xD7A3),
    ];
}
