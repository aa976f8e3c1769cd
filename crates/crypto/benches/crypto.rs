//! Throughput of the vault's crypto: `cargo bench -p idbridge-crypto`.
//!
//! Plain timing loops (no harness), one thread. Each operation is warmed up for 200 ms, then
//! timed in 20 samples of about 50 ms; the median and the best sample are printed. The build
//! machine is shared, so the best sample (the one least disturbed by other processes) is the
//! figure to compare between runs and versions.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use idbridge_crypto::{KeyRing, RowBinding, VaultKeyPair, seal_to};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

/// About the size of an ORCID token response's secrets (access + refresh token, JSON).
const TEST_SECRET: &str = r#"{"access_token":"f5af9f51-07e6-4332-8f1a-c0c11c1e3728","refresh_token":"f725f747-3a65-49f6-a231-3e8944ce464d"}"#;
const SAMPLES: usize = 20;
const SAMPLE_TIME: Duration = Duration::from_millis(50);

fn rate(name: &str, mut op: impl FnMut()) {
    let warm_up = Instant::now();
    while warm_up.elapsed() < Duration::from_millis(200) {
        op();
    }
    // Microseconds per operation, one entry per sample.
    let mut samples: Vec<f64> = (0..SAMPLES)
        .map(|_| {
            let start = Instant::now();
            let mut n: u64 = 0;
            while start.elapsed() < SAMPLE_TIME {
                for _ in 0..20 {
                    op();
                }
                n += 20;
            }
            start.elapsed().as_secs_f64() * 1e6 / n as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    let (best, median) = (samples[0], samples[SAMPLES / 2]);
    println!(
        "{name:<40} best {best:>8.2} µs/op ({:>9.0} ops/s)   median {median:>8.2} µs/op",
        1e6 / best
    );
}

fn main() {
    let keys = format!(
        "k2026a:{},k2025b:{}",
        KeyRing::generate_key().unwrap().expose_secret(),
        KeyRing::generate_key().unwrap().expose_secret()
    );
    let ring = KeyRing::from_config(&SecretString::from(keys), "k2026a").unwrap();
    let binding = RowBinding::new(Uuid::now_v7(), "0000-0002-1825-0097");
    let secret = SecretString::from(TEST_SECRET);
    let sealed = ring.seal(&secret, &binding).unwrap();

    println!("idbridge-crypto, secret of {} bytes", TEST_SECRET.len());
    rate("envelope seal (new DEK, wrap)", || {
        black_box(ring.seal(&secret, &binding).unwrap());
    });
    rate("envelope open (unwrap DEK, decrypt)", || {
        black_box(ring.open(&sealed, &binding).unwrap());
    });
    rate("envelope rewrap (rotation)", || {
        black_box(ring.rewrap(&sealed, &binding).unwrap());
    });

    let vault = VaultKeyPair::generate().unwrap();
    let (info, aad) = (
        b"idbridge token hand-off v1".as_slice(),
        b"connection".as_slice(),
    );
    let boxed = seal_to(vault.public_key(), info, aad, TEST_SECRET.as_bytes()).unwrap();
    rate("HPKE seal_to (portal)", || {
        black_box(seal_to(vault.public_key(), info, aad, TEST_SECRET.as_bytes()).unwrap());
    });
    rate("HPKE open (vault)", || {
        black_box(vault.open(&boxed, info, aad).unwrap());
    });
}
