//! Identity primitives: signing, strict verification, sealed boxes, and one
//! Argon2id unlock with the production parameters.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use identity_core::{Identity, KdfParams, Keyfile, Passphrase, seal};

fn signatures(c: &mut Criterion) {
    let mut rng = rand::rng();
    let identity = Identity::generate(&mut rng);
    let user = identity.user_id();
    let message = vec![7u8; 1024];
    let signature = identity.sign(b"bench\0", &message);
    let mut group = c.benchmark_group("ed25519_1k");
    group.throughput(Throughput::Elements(1));
    group.bench_function("sign", |b| b.iter(|| identity.sign(b"bench\0", &message)));
    group.bench_function("verify_strict", |b| {
        b.iter(|| user.verify(b"bench\0", &message, &signature).unwrap())
    });
    group.finish();
}

fn sealed_box(c: &mut Criterion) {
    let mut rng = rand::rng();
    let identity = Identity::generate(&mut rng);
    let user = identity.user_id();
    let key = [9u8; 32];
    let sealed = seal(&mut rng, &user, &key, b"aad");
    let mut group = c.benchmark_group("sealed_box_32b");
    group.throughput(Throughput::Elements(1));
    group.bench_function("seal", |b| b.iter(|| seal(&mut rng, &user, &key, b"aad")));
    group.bench_function("open", |b| {
        b.iter(|| identity.open_sealed(&sealed, b"aad").unwrap())
    });
    group.finish();
}

fn unlock(c: &mut Criterion) {
    let mut rng = rand::rng();
    let identity = Identity::generate(&mut rng);
    let passphrase = Passphrase::new("correct horse battery staple");
    let bytes = Keyfile::seal_with_passphrase(&mut rng, &identity, &passphrase, KdfParams::DEFAULT)
        .unwrap();
    let keyfile = Keyfile::parse(&bytes).unwrap();
    let mut group = c.benchmark_group("keyfile");
    group.sample_size(10);
    group.bench_function("unlock_argon2id_default", |b| {
        b.iter(|| keyfile.unlock_with_passphrase(&passphrase).unwrap())
    });
    group.finish();
}

criterion_group!(benches, signatures, sealed_box, unlock);
criterion_main!(benches);
