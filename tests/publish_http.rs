//! Publishing, over HTTP: what each privacy level publishes, the listener's conditional GET
//! and its refusals (in-process, on a store seeded from `tests/data/publish/`), and the whole
//! path against the real mail stack: room4's daemon with `[http]` books erin's invitation,
//! publishes it, real clients read it back (Python's `icalendar` for the feed, headless
//! Chromium plus `mf2py` for the hCalendar page, its screenshot in `target/test-artifacts/`),
//! and a VFREEBUSY REQUEST by mail gets its REPLY.
//!
//! The clients come from `scripts/publish-tools` (Debian packages and mf2py, installed when
//! missing); where they cannot be had, the client checks are skipped with a message saying
//! so, and everything else still runs.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::{MailStack, data, terminate, unique};
use imipd::calendar::{self, CalAddress};
use imipd::config::Config;
use imipd::policy::busy;
use imipd::publish::{self, Details, Publication};
use imipd::store::{Commit, LedgerEntry, MessageKey, Store, StoredObject};
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "test-token-0123456789abcdef";

/// One HTTP answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }
}

/// A GET over a fresh HTTP/1.1 connection.
async fn get(address: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect to the listener");
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send the request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read the answer");
    let text = String::from_utf8(raw).expect("a UTF-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("a header block");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_string(),
    }
}

/// `tests/data/publish/bookings.ics` with its days set from today (UTC), one calendar per UID.
fn bookings(account: &str, today: DateTime<Utc>) -> Vec<calendar::ICalendar> {
    let mut text = data("publish/bookings.ics").replace("room@corp.test", account);
    for n in 1..=4 {
        let day = (today + Duration::days(n)).format("%Y%m%d").to_string();
        text = text.replace(&format!("{{{{DAY{n}}}}}"), &day);
    }
    calendar::parse(&text).expect("bookings.ics parses")
}

/// Stores the bookings for `account` with their busy intervals, as the pipeline would.
async fn seed(store: &Store, account: &str, now: DateTime<Utc>) {
    let me = vec![CalAddress::parse(account).expect("an address")];
    let mut objects = Vec::new();
    let mut updates = Vec::new();
    for ical in bookings(account, now) {
        let uid = calendar::SchedulingView::new(&ical)
            .expect("a scheduling object")
            .uid
            .to_string();
        updates.push(busy::update(account, &uid, &ical, &me, now, 365));
        objects.push((
            account.to_string(),
            StoredObject::new(uid, calendar::write(&ical)),
        ));
    }
    store
        .commit(&Commit {
            key: MessageKey {
                account: account.to_string(),
                folder: "seed".into(),
                uid_validity: 0,
                uid: 0,
            },
            entry: LedgerEntry {
                message_id: None,
                content_hash: format!("seed {account}"),
                results: Vec::new(),
                processed_at: now.to_rfc3339(),
            },
            objects,
            replies: Vec::new(),
            sent: Vec::new(),
            busy: updates,
            checkpoint: None,
        })
        .await
        .expect("seeding the store");
}

fn test_config() -> Config {
    Config::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/publish/imipd.toml"))
        .expect("tests/data/publish/imipd.toml is valid")
}

/// The feed's VEVENTs as (UID, SUMMARY, STATUS, the whole component text), by the
/// calendar layer.
fn events(feed: &str) -> Vec<(String, String, String, String)> {
    let unfolded = feed.replace("\r\n ", "");
    let ical = calendar::parse(&unfolded).expect("the feed parses");
    assert_eq!(ical.len(), 1, "the feed is one VCALENDAR");
    unfolded
        .split("BEGIN:VEVENT")
        .skip(1)
        .map(|block| {
            let block = block.split("END:VEVENT").next().unwrap_or_default();
            let value = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}:")))
                    .unwrap_or_default()
                    .to_string()
            };
            (
                value("UID"),
                value("SUMMARY"),
                value("STATUS"),
                block.to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_privacy_level_publishes_only_what_it_allows() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("store opens");
    let now = Utc::now();
    seed(&store, "room@corp.test", now).await;
    let config = test_config();
    let summary_level = Publication::of(&config.mailboxes[0]);
    assert_eq!(summary_level.details, Details::Summary);
    let feed_of = |publication: &Publication| {
        let objects = publish::objects(&store, publication, None).expect("store reads");
        calendar::write(&publish::feed(&objects, publication))
    };

    let text = feed_of(&summary_level);
    assert!(text.contains("METHOD:PUBLISH"), "{text}");
    assert!(text.contains("X-WR-TIMEZONE:Europe/Berlin"), "{text}");
    assert!(text.contains("NAME:Room & Co"), "{text}");
    assert!(
        text.contains("REFRESH-INTERVAL;VALUE=DURATION:PT15M"),
        "{text}"
    );
    let found = events(&text);
    assert_eq!(
        found.len(),
        6,
        "accepted, tentative, private, the series and its cancelled instance, all-day; not the declined one:\n{text}"
    );
    assert!(!text.contains("Declined by the room"), "{text}");
    assert!(
        !text.contains("org.example"),
        "real UIDs are not published: {text}"
    );
    assert!(
        !text.contains("DESCRIPTION") && !text.contains("ATTENDEE"),
        "{text}"
    );
    let by_summary = |s: &str| found.iter().filter(|e| e.1 == s).collect::<Vec<_>>();
    assert_eq!(by_summary("Budget review").len(), 1);
    assert!(
        by_summary("Budget review")[0]
            .3
            .contains("LOCATION:Room 1\\, first floor")
    );
    assert_eq!(by_summary("Standup right after")[0].2, "TENTATIVE");
    assert!(
        !text.contains("Personnel matter"),
        "a private meeting is published as busy: {text}"
    );
    assert_eq!(by_summary("Busy").len(), 1);
    let series = by_summary("Daily wrap-up");
    assert_eq!(series.len(), 2, "{text}");
    assert!(
        series
            .iter()
            .any(|e| e.2 == "CANCELLED" && e.3.contains("RECURRENCE-ID"))
    );
    assert_eq!(
        series[0].0, series[1].0,
        "the digest UID is the same for the series and its instance"
    );
    assert_eq!(text.matches("BEGIN:VTIMEZONE").count(), 1, "{text}");

    let busy_level = Publication {
        details: Details::Busy,
        ..summary_level.clone()
    };
    let text = feed_of(&busy_level);
    let found = events(&text);
    assert!(found.iter().all(|e| e.1 == "Busy"), "{text}");
    assert!(!text.contains("LOCATION"), "{text}");

    let full = Publication {
        details: Details::Full,
        ..summary_level
    };
    let text = feed_of(&full);
    assert!(text.contains("UID:accepted@org.example"), "{text}");
    assert!(text.contains("mailto:guest@corp.test"), "{text}");
    assert!(!text.contains("X-RECEIVED-SEQUENCE"), "{text}");
    assert!(
        !text.contains("Personnel matter"),
        "private stays busy even at full: {text}"
    );
}

/// Starts the listener on a free loopback port.
async fn listener(store: Store, config: &Config) -> SocketAddr {
    let socket = publish::http::bind("127.0.0.1:0".parse().expect("an address"))
        .await
        .expect("bind");
    let address = socket.local_addr().expect("local address");
    let server = publish::http::Server::new(store, &config.mailboxes);
    tokio::spawn(publish::http::serve(
        socket,
        server,
        tokio_util::sync::CancellationToken::new(),
    ));
    address
}

#[tokio::test(flavor = "multi_thread")]
async fn strangers_get_the_same_404_and_subscribers_get_304_when_nothing_changed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("store opens");
    let now = Utc::now();
    seed(&store, "room@corp.test", now).await;
    seed(&store, "open@corp.test", now).await;
    seed(&store, "hidden@corp.test", now).await;
    let address = listener(store, &test_config()).await;
    let feed = "/calendars/room@corp.test/calendar.ics";

    let good = get(address, &format!("{feed}?token={TOKEN}"), &[]).await;
    assert_eq!(good.status, 200, "{good:?}");
    assert_eq!(good.header("content-type"), "text/calendar; charset=utf-8");
    assert!(good.header("cache-control").contains("private"));
    assert_eq!(good.header("referrer-policy"), "no-referrer");
    assert_eq!(events(&good.body).len(), 6);

    let refusals = [
        feed.to_string(),
        format!("{feed}?token=wrong-token-0123456789abcdef"),
        format!("{feed}?token="),
        format!("/calendars/nobody@corp.test/calendar.ics?token={TOKEN}"),
        "/calendars/hidden@corp.test/calendar.ics".to_string(),
        format!("/calendars/hidden@corp.test/calendar.ics?token={TOKEN}"),
        format!("/calendars/room@corp.test/secrets.txt?token={TOKEN}"),
        "/elsewhere".to_string(),
    ];
    let first = get(address, &refusals[0], &[]).await;
    assert_eq!(first.status, 404);
    for path in &refusals[1..] {
        let answer = get(address, path, &[]).await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (first.status, first.body.as_str()),
            "{path}: every refusal looks the same"
        );
    }

    let etag = good.header("etag").to_string();
    let modified = good.header("last-modified").to_string();
    assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");
    assert!(modified.ends_with(" GMT"), "{modified}");
    let path = format!("{feed}?token={TOKEN}");
    let same = get(address, &path, &[("If-None-Match", &etag)]).await;
    assert_eq!(same.status, 304, "{same:?}");
    assert!(same.body.is_empty());
    assert_eq!(same.header("etag"), etag);
    let since = get(address, &path, &[("If-Modified-Since", &modified)]).await;
    assert_eq!(since.status, 304);
    let other = get(address, &path, &[("If-None-Match", "\"something-else\"")]).await;
    assert_eq!(other.status, 200);
    let older = get(
        address,
        &path,
        &[("If-Modified-Since", "Mon, 01 Jan 2001 00:00:00 GMT")],
    )
    .await;
    assert_eq!(older.status, 200);

    let public = get(address, "/calendars/open@corp.test/calendar.ics", &[]).await;
    assert_eq!(public.status, 200);
    assert!(events(&public.body).iter().all(|e| e.1 == "Busy"));

    let jcal = get(
        address,
        &format!("/calendars/room@corp.test/calendar.json?token={TOKEN}"),
        &[],
    )
    .await;
    assert_eq!(jcal.header("content-type"), "application/calendar+json");
    let jcal: Value = serde_json::from_str(&jcal.body).expect("jCal is JSON");
    assert_eq!(jcal[0], "vcalendar");
    assert_eq!(
        jcal[2]
            .as_array()
            .map(|c| c.iter().filter(|c| c[0] == "vevent").count()),
        Some(6)
    );

    let page = get(
        address,
        &format!("/calendars/room@corp.test/calendar.html?token={TOKEN}"),
        &[],
    )
    .await;
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-security-policy")
            .contains("default-src 'none'")
    );
    assert_eq!(
        page.body.matches("class=\"vevent").count(),
        6,
        "{}",
        page.body
    );
    assert!(
        page.body.contains("Offsite &lt;planning&gt; &amp; more"),
        "{}",
        page.body
    );
    assert!(page.body.contains("<h1>Room &amp; Co</h1>"));
    let bad_days = get(
        address,
        &format!("/calendars/room@corp.test/calendar.html?token={TOKEN}&days=999"),
        &[],
    )
    .await;
    assert_eq!(bad_days.status, 400);

    let day1 = (now + Duration::days(1)).format("%Y%m%d");
    let day2 = (now + Duration::days(2)).format("%Y%m%d");
    let fb = get(
        address,
        &format!("/calendars/room@corp.test/freebusy.ifb?token={TOKEN}&start={day1}T000000Z&end={day2}T000000Z"),
        &[],
    )
    .await;
    assert_eq!(fb.status, 200, "{fb:?}");
    let periods: Vec<&str> = fb
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("FREEBUSY;FBTYPE=BUSY:"))
        .collect();
    assert_eq!(
        periods,
        vec![
            format!("{day1}T090000Z/{day1}T110000Z"),
            format!("{day1}T150000Z/{day1}T153000Z")
        ],
        "touching bookings merge; only opaque busy time: {}",
        fb.body
    );
    assert!(calendar::parse(&fb.body).is_ok());
    assert!(fb.body.contains(&format!("DTSTART:{day1}T000000Z")));
    let bad = get(
        address,
        &format!("/calendars/room@corp.test/freebusy.ifb?token={TOKEN}&start=tomorrow"),
        &[],
    )
    .await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("RFC 5545"), "{}", bad.body);
    let stranger = get(
        address,
        "/calendars/room@corp.test/freebusy.ifb?start=tomorrow",
        &[],
    )
    .await;
    assert_eq!(
        stranger.status, 404,
        "a stranger learns nothing, not even a 400"
    );
}

/// The tools of `scripts/publish-tools`: the PYTHONPATH for mf2py, or why they are missing.
fn tools() -> Result<String, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(root.join("scripts/publish-tools"))
        .arg(root.join("target/publish-tools"))
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run scripts/publish-tools: {e}"))?;
    if !output.status.success() {
        return Err(format!("scripts/publish-tools failed ({})", output.status));
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("PYTHONPATH="))
        .map(str::to_string)
        .ok_or_else(|| "scripts/publish-tools printed no PYTHONPATH".to_string())
}

/// Runs `tests/publish/client.py` with `args` and reads its JSON.
fn client(pythonpath: &str, args: &[&str]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/publish/client.py");
    let output = Command::new("/usr/bin/python3")
        .arg(script)
        .args(args)
        .env("PYTHONPATH", pythonpath)
        .stderr(Stdio::inherit())
        .output()
        .expect("run python3");
    assert!(output.status.success(), "client.py {args:?} failed");
    serde_json::from_slice(&output.stdout).expect("client.py prints JSON")
}

fn wire(text: &str) -> Vec<u8> {
    text.replace("\r\n", "\n")
        .replace('\n', "\r\n")
        .into_bytes()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("create target/test-artifacts");
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_publishes_a_booking_to_real_clients_and_answers_freebusy_by_mail() {
    let stack = MailStack::get();
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let config = stack.daemon_config_with(
        "room4",
        "Room 4",
        1,
        &format!(
            "publish_token = \"{TOKEN}\"\npublish_details = \"summary\"\npublish_time_zone = \"Europe/Berlin\"\n"
        ),
        dir.path(),
    );
    let mut text = std::fs::read_to_string(&config).expect("read the config");
    text.push_str(&format!("\n[http]\nlisten = \"127.0.0.1:{port}\"\n"));
    std::fs::write(&config, text).expect("write the config");

    // A booking two days ahead at 10:00 UTC, one hour, with a title unique to this run.
    let uid = unique("publish");
    let title = format!("Publish check {}", &uid[uid.len() - 6..]);
    let day = (Utc::now() + Duration::days(2))
        .format("%Y%m%d")
        .to_string();
    let (start, end) = (format!("{day}T100000Z"), format!("{day}T110000Z"));
    let invitation = wire(
        &data("templates/publish/request.eml")
            .replace("{{UID}}", &uid)
            .replace("{{SUMMARY}}", &title)
            .replace("{{STAMP}}", &imipd::itip::object::stamp(Utc::now()))
            .replace("{{START}}", &start)
            .replace("{{END}}", &end),
    );
    stack
        .send("erin@example.test", "room4@example.test", &invitation)
        .await;
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_imipd"))
        .args(["run", "--config"])
        .arg(&config)
        .env("IMIPD_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the daemon");
    let accepted = stack
        .wait_for_message(
            "erin",
            dir.path(),
            std::time::Duration::from_secs(60),
            |raw| {
                imipd::mail::extract(raw).is_ok_and(|m| {
                    m.sender.from.as_deref() == Some("room4@example.test")
                        && m.parts.iter().any(|p| p.text.contains(&uid))
                })
            },
        )
        .await;
    let outcome = async {
        accepted.expect("room4 answers erin's invitation within 60 s");
        let address: SocketAddr = format!("127.0.0.1:{port}").parse().expect("an address");
        let base = "/calendars/room4@example.test";
        let feed = get(address, &format!("{base}/calendar.ics?token={TOKEN}"), &[]).await;
        assert_eq!(feed.status, 200, "{feed:?}");
        let ours: Vec<_> = events(&feed.body)
            .into_iter()
            .filter(|e| e.1 == title)
            .collect();
        assert_eq!(ours.len(), 1, "the booking is in the feed:\n{}", feed.body);
        assert!(
            ours[0].3.contains(&format!("DTSTART:{start}")),
            "{}",
            ours[0].3
        );
        let published_uid = ours[0].0.clone();
        assert_eq!(
            published_uid,
            publish::published_uid("room4@example.test", &uid)
        );
        let again = get(
            address,
            &format!("{base}/calendar.ics?token={TOKEN}"),
            &[("If-None-Match", feed.header("etag"))],
        )
        .await;
        assert_eq!(again.status, 304);
        let refused = get(
            address,
            &format!("{base}/calendar.ics?token=nope-nope-nope-nope"),
            &[],
        )
        .await;
        assert_eq!(refused.status, 404);

        match tools() {
            Err(why) => {
                eprintln!("SKIPPED the real-client checks (icalendar, Chromium, mf2py): {why}")
            }
            Ok(pythonpath) => {
                let url = format!("http://{address}{base}/calendar.ics?token={TOKEN}");
                let subscribed = client(&pythonpath, &["feed", &url]);
                assert_eq!(subscribed["method"], "PUBLISH");
                let theirs: Vec<&Value> = subscribed["events"]
                    .as_array()
                    .expect("events")
                    .iter()
                    .filter(|e| e["summary"] == title.as_str())
                    .collect();
                assert_eq!(theirs.len(), 1, "{subscribed}");
                let iso = |basic: &str| {
                    chrono::NaiveDateTime::parse_from_str(basic, "%Y%m%dT%H%M%SZ")
                        .expect("a UTC time")
                        .format("%Y-%m-%dT%H:%M:%SZ")
                        .to_string()
                };
                assert_eq!(theirs[0]["start"], iso(&start));
                assert_eq!(theirs[0]["end"], iso(&end));
                assert_eq!(theirs[0]["uid"], published_uid.as_str());

                let png = artifacts().join("publish-calendar-page.png");
                let url = format!("http://{address}{base}/calendar.html?token={TOKEN}");
                let page = client(&pythonpath, &["page", &url, png.to_str().expect("utf-8")]);
                let shown: Vec<&Value> = page["events"]
                    .as_array()
                    .expect("events")
                    .iter()
                    .filter(|e| e["name"] == title.as_str())
                    .collect();
                assert_eq!(shown.len(), 1, "the page shows the booking once: {page}");
                assert_eq!(shown[0]["start"], iso(&start));
                assert_eq!(shown[0]["end"], iso(&end));
                assert!(
                    shown[0]["start_as_written"]
                        .as_str()
                        .is_some_and(|s| s.contains("+01") || s.contains("+02")),
                    "the page shows the room's zone: {page}"
                );
                assert_eq!(shown[0]["uid"], published_uid.as_str());
                let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
                assert!(size > 1000, "the screenshot {} was written", png.display());
                // Every booking the page shows is one the feed holds.
                let feed_uids: Vec<String> = events(&feed.body).into_iter().map(|e| e.0).collect();
                for event in page["events"].as_array().expect("events") {
                    let uid = event["uid"].as_str().unwrap_or_default();
                    assert!(
                        feed_uids.iter().any(|u| u == uid),
                        "{event} is not in the feed"
                    );
                }
            }
        }

        // VFREEBUSY by mail, for the booking's day.
        let fb_uid = unique("freebusy");
        let request = wire(
            &data("templates/publish/freebusy.eml")
                .replace("{{UID}}", &fb_uid)
                .replace("{{STAMP}}", &imipd::itip::object::stamp(Utc::now()))
                .replace("{{FROM}}", &format!("{day}T000000Z"))
                .replace("{{TO}}", &format!("{day}T235959Z")),
        );
        stack
            .send("erin@example.test", "room4@example.test", &request)
            .await;
        let reply = stack
            .wait_for_message(
                "erin",
                dir.path(),
                std::time::Duration::from_secs(60),
                |raw| {
                    imipd::mail::extract(raw).is_ok_and(|m| {
                        m.sender.from.as_deref() == Some("room4@example.test")
                            && m.parts.iter().any(|p| p.text.contains(&fb_uid))
                    })
                },
            )
            .await
            .expect("room4 answers the VFREEBUSY REQUEST within 60 s");
        let found = imipd::mail::extract(&reply).expect("the reply is a message");
        let part = &found.parts[0];
        assert_eq!(part.method_param.as_deref(), Some("REPLY"));
        let text = part.text.replace("\r\n ", "");
        assert!(text.contains("BEGIN:VFREEBUSY"), "{text}");
        assert!(
            text.contains(&format!("FREEBUSY;FBTYPE=BUSY:{start}/{end}"))
                || text
                    .lines()
                    .any(|l| l.starts_with("FREEBUSY") && l.contains(&start)),
            "the booking is busy time in the REPLY:\n{text}"
        );
        assert!(
            text.contains("ATTENDEE:mailto:room4@example.test"),
            "{text}"
        );
        assert!(
            !text.contains(&title),
            "free/busy carries no titles: {text}"
        );
    };
    // The daemon is stopped whatever the checks found.
    let result = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(outcome)).await;
    let status = terminate(&mut daemon, std::time::Duration::from_secs(20));
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    assert!(status.success(), "the daemon stops cleanly: {status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_takes_the_new_publish_keys() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("store opens");
    seed(&store, "room@corp.test", Utc::now()).await;
    let mut config = test_config();
    let socket = publish::http::bind("127.0.0.1:0".parse().expect("an address"))
        .await
        .expect("bind");
    let address = socket.local_addr().expect("local address");
    let server = publish::http::Server::new(store, &config.mailboxes);
    tokio::spawn(publish::http::serve(
        socket,
        server.clone(),
        tokio_util::sync::CancellationToken::new(),
    ));
    let feed = "/calendars/room@corp.test/calendar.ics";
    assert_eq!(
        get(address, &format!("{feed}?token={TOKEN}"), &[])
            .await
            .status,
        200
    );
    let rotated = "rotated-token-0123456789abcdef";
    config.mailboxes[0].publish_token = Some(rotated.to_string());
    server.update(&config.mailboxes);
    assert_eq!(
        get(address, &format!("{feed}?token={TOKEN}"), &[])
            .await
            .status,
        404
    );
    assert_eq!(
        get(address, &format!("{feed}?token={rotated}"), &[])
            .await
            .status,
        200
    );
}

#[test]
fn a_taken_http_port_stops_the_daemon_at_start_with_a_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let port = taken.local_addr().expect("local address").port();
    let mut text = data("publish/imipd.toml");
    text.push_str(&format!("\n[http]\nlisten = \"127.0.0.1:{port}\"\n"));
    let config = dir.path().join("imipd.toml");
    std::fs::write(&config, text).expect("write the config");
    let output = Command::new(env!("CARGO_BIN_EXE_imipd"))
        .args(["run", "--config"])
        .arg(&config)
        .env("UNUSED", "x")
        .output()
        .expect("run the daemon");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen for HTTP on 127.0.0.1:{port}")),
        "{stderr}"
    );
    drop(taken);
}

#[tokio::test(flavor = "multi_thread")]
async fn show_prints_the_published_page_offline() {
    let dir = tempfile::tempdir().expect("temp dir");
    let now = Utc::now();
    {
        let store = Store::open(dir.path()).expect("store opens");
        seed(&store, "room@corp.test", now).await;
    }
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/publish/imipd.toml");
    let output = Command::new(env!("CARGO_BIN_EXE_imipd"))
        .args([
            "show",
            "--format",
            "html",
            "--mailbox",
            "room@corp.test",
            "--store",
        ])
        .arg(dir.path())
        .arg("--config")
        .arg(&config)
        .output()
        .expect("run imipd show");
    let page = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(page.matches("class=\"vevent h-event").count(), 6, "{page}");
    assert!(page.contains("(Europe/Berlin)"), "{page}");
    assert!(
        !page.contains("Personnel matter"),
        "the mailbox's privacy rules apply: {page}"
    );
    let everything = Command::new(env!("CARGO_BIN_EXE_imipd"))
        .args(["show", "--format", "html", "--store"])
        .arg(dir.path())
        .output()
        .expect("run imipd show");
    let page = String::from_utf8_lossy(&everything.stdout);
    assert!(page.contains("Budget review"), "{page}");
    assert!(
        !page.contains("Personnel matter"),
        "a private meeting stays busy even offline: {page}"
    );
    assert!(
        page.contains("(UTC)"),
        "without --config the page is in UTC: {page}"
    );
}
