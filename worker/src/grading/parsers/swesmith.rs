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
//! them and translated by [`pyre`] (`\s \S \d \w` get Python 3.11's classes), and
//! `re.IGNORECASE` is spelled out per letter as Python applies it ([`ignore_case`]: `i` also
//! matches `ı İ`, `k` `K`, `s` `ſ`). JUnit XML goes through [`xml`], which refuses a DTD here. `str.split()`, `strip()`, `splitlines()`, `isdigit()` and
//! `int()` follow Python's rules.
//!
//! One file, long on purpose: every profile class's `log_parser` port side by side, each named
//! by the class it ports, so [`lookup`] and the tests' check against the package's source cover
//! one file.

use std::collections::HashSet;
use std::sync::LazyLock;

use agentmill_proto::TestStatus;
use regex::Regex;

use super::pyre::{self, group, ignore_case};
use super::pystr::{self, isdigit, splitlines};
use super::{Generation, ParseContext, ParseError, ParseFn, StatusMap, xml};

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

/// Compiles a constant Python pattern: `flags` (`(?s)`, `(?m)`) in front, `ignore_case` for
/// `re.IGNORECASE`.
fn compile(flags: &str, pattern: &str, ignore: bool) -> Regex {
    let body = if ignore { ignore_case(pattern) } else { pattern.to_string() };
    pyre::compile(&format!("{flags}{body}"))
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

/// `int(digits)` for a `\d+` match, saturating far above [`SYNTHETIC_LIMIT`]; Python's digit
/// limit raises.
fn py_int(parser: &'static str, digits: &str) -> Result<u128, ParseError> {
    if digits.chars().count() > INT_MAX_STR_DIGITS {
        return Err(error(parser, format!("int() of a {}-digit number raises ValueError (Python's int_max_str_digits is {INT_MAX_STR_DIGITS})", digits.chars().count())));
    }
    Ok(digits.chars().fold(0u128, |n, c| n.saturating_mul(10).saturating_add(u128::from(pystr::decimal_value(c).unwrap_or(0)))))
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
        let tree = match xml::parse(document.as_str(), xml::Dtd::Refuse) {
            Ok(tree) => tree,
            Err(xml::Error::Malformed(_)) => continue,
            Err(xml::Error::Doctype) => {
                return Err(error("parse_log_gradle_junit_xml", "a JUnit XML report in the log has a <!DOCTYPE>: xml.etree would apply its DTD, which agentmill does not read"));
            }
        };
        let suite = tree.get(0, "name").unwrap_or_default();
        for testcase in tree.descendants(0, "testcase") {
            let classname = tree.get(testcase, "classname").unwrap_or(suite);
            let method = tree.get(testcase, "name").unwrap_or_default();
            let child = |tag: &str| tree.find(testcase, tag).is_some();
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

