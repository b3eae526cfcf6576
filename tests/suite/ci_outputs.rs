//! CI outputs (`--junit FILE`, `--summary-md FILE`, `$GITHUB_STEP_SUMMARY`) of a synthetic
//! campaign (no browser): the JUnit file holds to the JUnit schema CI servers read (Jenkins'
//! junit-4/junit-10 XSD: element nesting and order, required and allowed attributes, numeric
//! types, and counts that agree with the testcases), says each criterion with its figures, and
//! `report ID` rebuilds both files byte for byte.

use crate::common::*;
use quick_xml::events::Event as Xml;
use std::collections::BTreeMap;
use std::time::Duration;

/// An element of the parsed file.
#[derive(Debug, Default)]
struct Node {
    name: String,
    attrs: BTreeMap<String, String>,
    children: Vec<Node>,
}

impl Node {
    fn attr(&self, k: &str) -> Option<&str> {
        self.attrs.get(k).map(String::as_str)
    }

    fn kids<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> {
        self.children.iter().filter(move |c| c.name == name)
    }
}

/// Parses `xml` into its element tree (text is not kept: the schema allows it where it is).
fn parse(xml: &str) -> Result<Node, String> {
    let mut r = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<Node> = vec![Node::default()];
    let open = |e: &quick_xml::events::BytesStart| -> Result<Node, String> {
        let mut n = Node { name: String::from_utf8_lossy(e.name().as_ref()).into_owned(), ..Node::default() };
        for a in e.attributes() {
            let a = a.map_err(|e| e.to_string())?;
            let v = a.normalized_value(quick_xml::XmlVersion::Explicit1_0).map_err(|e| e.to_string())?.into_owned();
            if n.attrs.insert(String::from_utf8_lossy(a.key.as_ref()).into_owned(), v).is_some() {
                return Err(format!("<{}>: duplicate attribute", n.name));
            }
        }
        Ok(n)
    };
    loop {
        match r.read_event().map_err(|e| format!("not well-formed XML at {}: {e}", r.buffer_position()))? {
            Xml::Start(e) => stack.push(open(&e)?),
            Xml::Empty(e) => {
                let n = open(&e)?;
                stack.last_mut().ok_or("unbalanced")?.children.push(n);
            }
            Xml::End(_) => {
                let n = stack.pop().ok_or("unbalanced")?;
                stack.last_mut().ok_or("unbalanced")?.children.push(n);
            }
            Xml::Eof => break,
            _ => {}
        }
    }
    let mut doc = stack.pop().filter(|_| stack.is_empty()).ok_or("unclosed element")?;
    match doc.children.len() {
        1 => Ok(doc.children.remove(0)),
        n => Err(format!("{n} root elements")),
    }
}

/// Attributes: every `required` one present, none outside `allowed`.
fn attrs_ok(n: &Node, required: &[&str], allowed: &[&str]) -> Result<(), String> {
    for r in required {
        if n.attr(r).is_none() {
            return Err(format!("<{}> lacks the required attribute {r}", n.name));
        }
    }
    match n.attrs.keys().find(|k| !required.contains(&k.as_str()) && !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!("<{}> has attribute {k}, which the schema does not allow", n.name)),
        None => Ok(()),
    }
}

/// xs:int >= 0 (counts) and xs:decimal >= 0 (times).
fn numbers_ok(n: &Node, ints: &[&str], decimals: &[&str]) -> Result<(), String> {
    for k in ints {
        if let Some(v) = n.attr(k) {
            v.parse::<u32>().map_err(|_| format!("<{}> {k}={v:?} is not a non-negative integer", n.name))?;
        }
    }
    for k in decimals {
        if let Some(v) = n.attr(k) {
            let (int, frac) = v.split_once('.').unwrap_or((v, "0"));
            let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
            let ok = digits(int) && digits(frac);
            if !ok {
                return Err(format!("<{}> {k}={v:?} is not a non-negative xs:decimal", n.name));
            }
        }
    }
    Ok(())
}

/// Children in the order `order` (each name at most once where `single`), nothing else.
fn children_ok(n: &Node, order: &[(&str, bool)]) -> Result<(), String> {
    let mut at = 0;
    let mut last: Option<&str> = None;
    for c in &n.children {
        let pos = order.iter().position(|(name, _)| *name == c.name).ok_or_else(|| format!("<{}> may not contain <{}>", n.name, c.name))?;
        if pos < at || (pos == at && last == Some(c.name.as_str()) && order[pos].1) {
            return Err(format!("<{}>: <{}> out of order or repeated", n.name, c.name));
        }
        at = pos;
        last = Some(order[pos].0);
    }
    Ok(())
}

/// What the file holds, once it passed the schema checks.
#[derive(Debug)]
pub(crate) struct Junit {
    /// Per testcase: name, and its failure message (None when it passed, Some("") skipped).
    pub(crate) cases: Vec<(String, Option<String>, bool)>,
}

/// The checks of the JUnit schema (Jenkins' junit-4.xsd / junit-10.xsd, which GitLab and GitHub
/// test reporters also accept).
pub(crate) fn validate(xml: &str) -> Result<Junit, String> {
    if !xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>") {
        return Err("no XML declaration".into());
    }
    let root = parse(xml)?;
    if root.name != "testsuites" {
        return Err(format!("root <{}>, not <testsuites>", root.name));
    }
    attrs_ok(&root, &[], &["name", "time", "tests", "failures", "errors", "skipped", "disabled"])?;
    numbers_ok(&root, &["tests", "failures", "errors", "skipped", "disabled"], &["time"])?;
    children_ok(&root, &[("testsuite", false)])?;
    let mut cases = Vec::new();
    let (mut all_tests, mut all_failures, mut all_skipped) = (0u32, 0u32, 0u32);
    for s in root.kids("testsuite") {
        attrs_ok(
            s,
            &["name", "tests"],
            &[
                "failures",
                "errors",
                "skipped",
                "disabled",
                "time",
                "timestamp",
                "hostname",
                "id",
                "package",
                "file",
                "log",
                "url",
                "version",
                "group",
            ],
        )?;
        numbers_ok(s, &["tests", "failures", "errors", "skipped", "disabled"], &["time"])?;
        children_ok(s, &[("properties", true), ("testcase", false), ("system-out", true), ("system-err", true)])?;
        for props in s.kids("properties") {
            attrs_ok(props, &[], &[])?;
            children_ok(props, &[("property", false)])?;
            for p in props.kids("property") {
                attrs_ok(p, &["name", "value"], &[])?;
            }
        }
        let (mut failures, mut skipped, mut tests) = (0u32, 0u32, 0u32);
        for t in s.kids("testcase") {
            tests += 1;
            attrs_ok(t, &["name"], &["classname", "time", "assertions", "status", "file", "line", "group"])?;
            numbers_ok(t, &["assertions", "line"], &["time"])?;
            children_ok(t, &[("skipped", true), ("error", false), ("failure", false), ("system-out", false), ("system-err", false)])?;
            let f: Vec<&Node> = t.kids("failure").collect();
            let sk = t.kids("skipped").count();
            if sk > 0 && (!f.is_empty() || t.kids("error").count() > 0) {
                return Err(format!("testcase {:?} is both skipped and failed", t.attr("name")));
            }
            for x in t.kids("failure").chain(t.kids("error")) {
                attrs_ok(x, &["message", "type"], &[])?;
            }
            for x in t.kids("skipped") {
                attrs_ok(x, &[], &["message", "type"])?;
            }
            failures += u32::from(!f.is_empty());
            skipped += u32::from(sk > 0);
            let message = f.first().map(|x| x.attr("message").unwrap_or_default().to_string());
            cases.push((t.attr("name").unwrap_or_default().to_string(), message, sk > 0));
        }
        let count = |k: &str| s.attr(k).map_or(Ok(0), |v| v.parse::<u32>().map_err(|e| e.to_string()));
        if (count("tests")?, count("failures")?, count("skipped")?, count("errors")?) != (tests, failures, skipped, 0) {
            return Err(format!("testsuite counts {:?} disagree with its testcases ({tests}, {failures}, {skipped}, 0)", s.attrs));
        }
        all_tests += tests;
        all_failures += failures;
        all_skipped += skipped;
    }
    let count = |k: &str| root.attr(k).map_or(Ok(0), |v| v.parse::<u32>().map_err(|e| e.to_string()));
    if (count("tests")?, count("failures")?, count("skipped")?) != (all_tests, all_failures, all_skipped) {
        return Err(format!("testsuites counts {:?} disagree with the testcases", root.attrs));
    }
    Ok(Junit { cases })
}

#[test]
fn the_schema_check_rejects_what_ci_servers_reject() {
    let ok = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="1" failures="1"><testsuite name="s" tests="1" failures="1"><testcase name="t" time="0.5"><failure message="m" type="x">d</failure></testcase></testsuite></testsuites>"#;
    assert!(validate(ok).is_ok(), "{:?}", validate(ok));
    for (bad, why) in [
        (ok.replace("tests=\"1\" failures=\"1\">", "tests=\"2\" failures=\"1\">"), "counts"),
        (ok.replace(" type=\"x\"", ""), "required attribute type"),
        (ok.replace("time=\"0.5\"", "time=\"1s\""), "xs:decimal"),
        (ok.replace("<testcase name=\"t\"", "<testcase nom=\"t\""), "required attribute name"),
        (ok.replace("</testcase>", "<skipped/></testcase>"), "out of order"),
        (ok.replace("</testsuite>", ""), "well-formed"),
    ] {
        let e = validate(&bad).expect_err(why);
        assert!(e.contains(why), "{why}: {e}");
    }
}

#[test]
fn junit_and_markdown_say_every_criterion_with_its_figures_and_report_rebuilds_them_byte_for_byte() {
    let sb = Sandbox::new("ci-outputs");
    // `good` passes; `bad` fails its success rate (half its ops fail, and its breaker opens): the
    // campaign fails too (1 of 2 phases passed)
    let body = format!(
        "{}{}{}{}",
        header("ci", ""),
        synthetic_task("1ms", 0.0),
        phase("good", "1s", 2, ""),
        phase("bad", "1s", 2, "task = { kind = \"synthetic\", latency = \"1ms\", failure_probability = 0.5 }")
    );
    let cfg = sb.write("ci.toml", &body);
    let gh = sb.root.join("step_summary.md");
    std::fs::write(&gh, "earlier step\n").expect("step summary");
    let (j1, m1) = (sb.root.join("junit-1.xml"), sb.root.join("summary-1.md"));
    let mut cmd = sb.launch(&cfg);
    cmd.arg("--junit").arg(&j1).arg("--summary-md").arg(&m1).env("GITHUB_STEP_SUMMARY", &gh);
    let out = run(cmd, Duration::from_secs(90));
    out.expect_code(1);
    let dir = sb.campaign_dir();
    let xml = std::fs::read_to_string(&j1).expect("--junit file");
    let md = std::fs::read_to_string(&m1).expect("--summary-md file");
    assert_eq!(xml, std::fs::read_to_string(dir.join("junit.xml")).unwrap(), "--junit is the reports directory's junit.xml");
    assert_eq!(md, std::fs::read_to_string(dir.join("summary.md")).unwrap());
    assert_eq!(std::fs::read_to_string(&gh).unwrap(), format!("earlier step\n{md}\n"), "appended to $GITHUB_STEP_SUMMARY");

    let j = validate(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let names: Vec<&str> = j.cases.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "phase 1 good: success rate >= 90.0%",
            "phase 1 good: p95 < 3 s",
            "phase 2 bad: success rate >= 90.0%",
            "phase 2 bad: p95 < 3 s",
            "campaign: at least 70.0% of phases pass",
            "campaign: overall success rate >= 90.0%",
            "campaign: the plan ran to its end",
        ],
        "{xml}"
    );
    let r = read_json(&dir.join("campaign_report.json"));
    let bad = &r["phases"][1];
    let failed: BTreeMap<&str, &str> = j.cases.iter().filter_map(|(n, m, _)| Some((n.as_str(), m.as_deref()?))).collect();
    // the failure message is the report's own sentence, with the figures
    let bad_rate = failed.get("phase 2 bad: success rate >= 90.0%").copied().unwrap_or_else(|| panic!("{xml}"));
    assert_eq!(Some(bad_rate), bad["criteria"]["failures"][0].as_str(), "{bad}");
    let (att, ok) = (count(&bad["ops_attempted"], "ops"), count(&bad["ops_succeeded"], "ok"));
    assert!(bad_rate.contains(&format!("({} of {att} ops failed)", att - ok)), "{bad_rate}");
    assert_eq!(
        failed.get("campaign: at least 70.0% of phases pass").copied(),
        Some("1 of 2 phases passed (50.0%), below the required 70.0%"),
        "{xml}"
    );
    assert!(
        !failed.contains_key("phase 1 good: success rate >= 90.0%") && !failed.contains_key("campaign: the plan ran to its end"),
        "{xml}"
    );
    // the passing criterion's figures go to its system-out
    assert!(
        xml.contains(&format!(
            "<system-out>success rate 100.0% ({0} of {0} ops; min 90.0%)",
            count(&r["phases"][0]["ops_attempted"], "ops")
        )),
        "{xml}"
    );

    assert!(md.starts_with(&format!("## ❌ stressctl campaign `{}`: FAILED\n", out.campaign_id())), "{md}");
    assert!(md.contains("| 2 | bad | moderate | synthetic |") && md.contains("❌ FAIL |") && md.contains("✅ PASS |"), "{md}");
    assert!(md.contains("- **phase 2 bad**: success rate"), "{md}");
    let opened: Vec<&str> = r["breakers"]["transitions"]
        .as_array()
        .expect("transitions")
        .iter()
        .filter(|t| t["to"] == "open")
        .filter_map(|t| t["key"].as_str())
        .collect();
    assert!(!opened.is_empty(), "{}", r["breakers"]);
    for key in opened {
        assert!(md.contains(&format!("| `{key}` |")), "{key} not in the breakers table\n{md}");
    }

    // `report ID` rebuilds both, byte for byte, and writes the copies asked for
    let before: Vec<Vec<u8>> = ["junit.xml", "summary.md"].iter().map(|f| std::fs::read(dir.join(f)).unwrap()).collect();
    let (j2, m2) = (sb.root.join("junit-2.xml"), sb.root.join("summary-2.md"));
    let mut cmd = sb.cmd(["report", out.campaign_id().as_str()]);
    cmd.arg("--junit").arg(&j2).arg("--summary-md").arg(&m2).env_remove("GITHUB_STEP_SUMMARY");
    run(cmd, Duration::from_secs(30)).expect_code(0);
    assert_eq!(std::fs::read(&j2).unwrap(), xml.as_bytes(), "junit.xml rebuilt byte for byte");
    assert_eq!(std::fs::read(&m2).unwrap(), md.as_bytes(), "summary.md rebuilt byte for byte");
    let after: Vec<Vec<u8>> = ["junit.xml", "summary.md"].iter().map(|f| std::fs::read(dir.join(f)).unwrap()).collect();
    assert!(before == after, "the reports directory's copies rebuilt identically");

    // they belong to one campaign's reports: not with --list or --compare
    let out = run(sb.cmd(["report", "--list", "--junit", "x.xml"]), Duration::from_secs(30));
    out.expect_code(2);
}

/// `report A --compare B` on real stores: a slowed task is a regression with its bootstrap
/// interval over the windows; a campaign compared with itself is not.
#[test]
fn compare_flags_a_slowed_task_with_its_interval_over_the_windows() {
    let sb = Sandbox::new("ci-compare");
    let run_with = |name: &str, latency: &str| {
        let body = format!("{}{}{}", header(name, ""), synthetic_task(latency, 0.0), phase("steady", "4s", 2, ""));
        let out = run(sb.launch(&sb.write(&format!("{name}.toml"), &body)), Duration::from_secs(90));
        out.expect_code(0);
        out.campaign_id()
    };
    let (base, slow) = (run_with("base", "2ms"), run_with("slow", "6ms"));
    let same = run(sb.cmd(["report", base.as_str(), "--compare", base.as_str()]), Duration::from_secs(30));
    same.expect_code(0);
    assert!(same.stdout.contains("No regressions") && !same.stdout.contains("within noise"), "{}", same.describe());
    let worse = run(sb.cmd(["report", base.as_str(), "--compare", slow.as_str()]), Duration::from_secs(30));
    worse.expect_code(1);
    let p50 = worse.stdout.lines().find(|l| l.contains("steady: p50 ")).unwrap_or_else(|| panic!("{}", worse.describe()));
    // 2 ms -> 6 ms in every window: the whole interval lies far beyond the 10 % tolerated
    let lo: f64 = p50
        .split("95% interval ")
        .nth(1)
        .and_then(|s| s.split("%..").next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no interval in {p50:?}"));
    assert!(lo > 10.0, "{p50}");
}
