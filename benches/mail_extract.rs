//! Extraction throughput (MB/s) over the golden corpus and over a large message: run with
//! `cargo bench --bench mail_extract`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::Path;

fn corpus() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/mail");
    let mut messages = Vec::new();
    for vendor in std::fs::read_dir(root).expect("tests/data/mail") {
        let vendor = vendor.expect("entry").path();
        if !vendor.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(vendor).expect("vendor dir") {
            let file = file.expect("entry").path();
            if file.extension().is_some_and(|e| e == "eml") {
                messages.push(std::fs::read(file).expect("read .eml"));
            }
        }
    }
    messages
}

/// A Gmail-shaped invitation with a 1 MB base64 PDF beside the calendar parts.
fn large() -> Vec<u8> {
    let root =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/mail/gmail/gmail-request.eml");
    let text = String::from_utf8(std::fs::read(root).expect("gmail-request.eml")).expect("ascii");
    let (head, last_boundary) = text.rsplit_once("--\r\n").expect("closing boundary");
    let boundary = head.rsplit_once("\r\n").map_or(head, |(_, b)| b);
    let line =
        "JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFIvRmlsdGVyIC9GbGF0ZURlY29kZT4+\r\n";
    let pdf = line.repeat(1_000_000 / line.len());
    let _ = last_boundary;
    format!(
        "{}\r\n{boundary}\r\nContent-Type: application/pdf; name=\"agenda.pdf\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"agenda.pdf\"\r\n\r\n{pdf}{boundary}--\r\n",
        head.rsplit_once("\r\n").map_or("", |(h, _)| h)
    )
    .into_bytes()
}

fn bench(c: &mut Criterion) {
    let messages = corpus();
    let total: usize = messages.iter().map(Vec::len).sum();
    let mut group = c.benchmark_group("extract");
    group.throughput(Throughput::Bytes(total as u64));
    group.bench_function("golden corpus", |b| {
        b.iter(|| {
            for message in &messages {
                let _ = black_box(imipd::mail::extract(black_box(message)));
            }
        })
    });
    let big = large();
    let found = imipd::mail::extract(&big).expect("the large message parses");
    assert_eq!(found.parts.len(), 2, "the calendar parts are still found");
    group.throughput(Throughput::Bytes(big.len() as u64));
    group.bench_function("1 MB invitation with PDF", |b| {
        b.iter(|| black_box(imipd::mail::extract(black_box(&big))))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
