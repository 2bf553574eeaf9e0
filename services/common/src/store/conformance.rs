//! The one conformance suite every [`StateStore`] backend must pass.
//!
//! A backend's test file provides a [`Harness`] and expands
//! [`state_store_conformance!`](crate::state_store_conformance), which makes
//! one `#[tokio::test]` per case below.

// Test support: failing loudly is how a suite reports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::{StateStore, StoreError, Versioned, WriteBatch};
use std::future::Future;

/// Opens a backend on one isolated dataset; opening again must see the same data.
pub trait Harness: Send {
    type Store: StateStore;
    fn open(&mut self) -> impl Future<Output = Self::Store> + Send;
}

fn v(value: &[u8], version: u64) -> Option<Versioned> {
    Some(Versioned {
        value: value.to_vec(),
        version,
    })
}

fn keys(entries: &super::Entries) -> Vec<&[u8]> {
    entries.iter().map(|(k, _)| k.as_slice()).collect()
}

pub async fn an_empty_store_has_no_keys_and_no_commits<H: Harness>(mut h: H) {
    let s = h.open().await;
    assert_eq!(s.get(b"absent").await.unwrap(), None);
    assert_eq!(s.last_commit().await.unwrap(), 0);
    assert!(s.scan_prefix(b"", 10).await.unwrap().is_empty());
}

pub async fn each_commit_gets_the_next_number_and_its_keys_take_it_as_version<H: Harness>(
    mut h: H,
) {
    let s = h.open().await;
    assert_eq!(
        s.commit(WriteBatch::new().put("a", "1").put("b", "1"))
            .await
            .unwrap(),
        1
    );
    assert_eq!(s.commit(WriteBatch::new().put("b", "2")).await.unwrap(), 2);
    assert_eq!(s.get(b"a").await.unwrap(), v(b"1", 1));
    assert_eq!(s.get(b"b").await.unwrap(), v(b"2", 2));
    assert_eq!(s.last_commit().await.unwrap(), 2);
}

pub async fn a_later_op_on_the_same_key_in_one_batch_wins<H: Harness>(mut h: H) {
    let s = h.open().await;
    s.commit(
        WriteBatch::new()
            .put("k", "first")
            .put("k", "second")
            .put("gone", "x")
            .delete("gone"),
    )
    .await
    .unwrap();
    assert_eq!(s.get(b"k").await.unwrap(), v(b"second", 1));
    assert_eq!(s.get(b"gone").await.unwrap(), None);
}

pub async fn delete_removes_a_key<H: Harness>(mut h: H) {
    let s = h.open().await;
    s.commit(WriteBatch::new().put("k", "v")).await.unwrap();
    s.commit(WriteBatch::new().delete("k")).await.unwrap();
    assert_eq!(s.get(b"k").await.unwrap(), None);
    assert!(s.scan_prefix(b"k", 10).await.unwrap().is_empty());
}

pub async fn a_failed_version_check_writes_nothing_from_the_batch<H: Harness>(mut h: H) {
    let s = h.open().await;
    s.commit(WriteBatch::new().put("balance", "100"))
        .await
        .unwrap();
    let err = s
        .commit(
            WriteBatch::new()
                .put("balance", "0")
                .put("other", "x")
                .expect_version("balance", Some(7)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                expected: Some(7),
                found: Some(1),
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(s.get(b"balance").await.unwrap(), v(b"100", 1));
    assert_eq!(s.get(b"other").await.unwrap(), None);
    assert_eq!(
        s.last_commit().await.unwrap(),
        1,
        "a rejected batch takes no commit number"
    );
}

pub async fn version_checks_pass_on_the_current_version_and_on_absence<H: Harness>(mut h: H) {
    let s = h.open().await;
    s.commit(
        WriteBatch::new()
            .put("new", "1")
            .expect_version("new", None),
    )
    .await
    .unwrap();
    s.commit(
        WriteBatch::new()
            .put("new", "2")
            .expect_version("new", Some(1)),
    )
    .await
    .unwrap();
    assert_eq!(s.get(b"new").await.unwrap(), v(b"2", 2));
    let err = s
        .commit(
            WriteBatch::new()
                .put("new", "3")
                .expect_version("new", None),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                expected: None,
                found: Some(2),
                ..
            }
        ),
        "{err}"
    );
}

pub async fn prefix_scans_are_ordered_bounded_and_exact<H: Harness>(mut h: H) {
    let s = h.open().await;
    s.commit(
        WriteBatch::new()
            .put("acct/10", "b")
            .put("acct/1", "a")
            .put("acct/2", "c")
            .put("acct0", "not in prefix")
            .put("accs", "before prefix"),
    )
    .await
    .unwrap();
    let all = s.scan_prefix(b"acct/", 100).await.unwrap();
    assert_eq!(keys(&all), vec![&b"acct/1"[..], b"acct/10", b"acct/2"]);
    let two = s.scan_prefix(b"acct/", 2).await.unwrap();
    assert_eq!(keys(&two), vec![&b"acct/1"[..], b"acct/10"]);
}

pub async fn range_scans_include_the_start_and_exclude_the_end<H: Harness>(mut h: H) {
    let s = h.open().await;
    let mut batch = WriteBatch::new();
    for i in 0u8..10 {
        batch = batch.put(vec![b'r', i], vec![i]);
    }
    s.commit(batch).await.unwrap();
    let mid = s.range(&[b'r', 3], Some(&[b'r', 6]), 100).await.unwrap();
    assert_eq!(keys(&mid), vec![&[b'r', 3][..], &[b'r', 4], &[b'r', 5]]);
    let tail = s.range(&[b'r', 8], None, 100).await.unwrap();
    assert_eq!(keys(&tail), vec![&[b'r', 8][..], &[b'r', 9]]);
    assert!(
        s.range(&[b'r', 6], Some(&[b'r', 3]), 100)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn last_in_range_finds_the_greatest_key_below_the_end<H: Harness>(mut h: H) {
    let s = h.open().await;
    let mut batch = WriteBatch::new();
    for i in [1u8, 3, 5, 7] {
        batch = batch.put(vec![b'h', i], vec![i]);
    }
    s.commit(batch.put("z", "other")).await.unwrap();
    let at = |end: u8| {
        let s = &s;
        async move {
            s.last_in_range(b"h", &[b'h', end])
                .await
                .unwrap()
                .map(|(k, _)| k)
        }
    };
    assert_eq!(at(6).await, Some(vec![b'h', 5]));
    assert_eq!(at(5).await, Some(vec![b'h', 3]), "the end is excluded");
    assert_eq!(at(1).await, None);
    assert_eq!(at(0xff).await, Some(vec![b'h', 7]), "z lies outside");
    let (_, v) = s.last_in_range(b"h", b"i").await.unwrap().unwrap();
    assert_eq!(v.value, vec![7]);
    assert_eq!(s.last_in_range(b"q", b"p").await.unwrap(), None);
}

pub async fn reverse_range_scans_descend_and_stop_at_the_limit<H: Harness>(mut h: H) {
    let s = h.open().await;
    let mut batch = WriteBatch::new();
    for i in [1u8, 3, 5, 7] {
        batch = batch.put(vec![b'h', i], vec![i]);
    }
    s.commit(batch.put("g", "before").put("z", "after"))
        .await
        .unwrap();
    let rev = |end: u8, limit: usize| {
        let s = &s;
        async move {
            keys(&s.range_rev(b"h", &[b'h', end], limit).await.unwrap())
                .iter()
                .map(|k| k.to_vec())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        rev(0xff, 10).await,
        vec![vec![b'h', 7], vec![b'h', 5], vec![b'h', 3], vec![b'h', 1]]
    );
    assert_eq!(
        rev(7, 2).await,
        vec![vec![b'h', 5], vec![b'h', 3]],
        "end excluded, limit kept"
    );
    assert!(rev(1, 10).await.is_empty());
    assert!(s.range_rev(b"q", b"p", 10).await.unwrap().is_empty());
}

pub async fn binary_keys_with_high_bytes_scan_correctly<H: Harness>(mut h: H) {
    let s = h.open().await;
    s.commit(
        WriteBatch::new()
            .put(vec![0xff, 0x00], "a")
            .put(vec![0xff, 0xff], "b")
            .put(vec![0xfe, 0xff], "c"),
    )
    .await
    .unwrap();
    let under_ff = s.scan_prefix(&[0xff], 10).await.unwrap();
    assert_eq!(keys(&under_ff), vec![&[0xff, 0x00][..], &[0xff, 0xff]]);
}

pub async fn an_empty_key_is_refused<H: Harness>(mut h: H) {
    let s = h.open().await;
    let err = s.commit(WriteBatch::new().put("", "v")).await.unwrap_err();
    assert!(matches!(err, StoreError::Limit(_)), "{err}");
    assert_eq!(s.last_commit().await.unwrap(), 0);
}

pub async fn committed_data_survives_a_reopen<H: Harness>(mut h: H) {
    {
        let s = h.open().await;
        s.commit(WriteBatch::new().put("k", "v")).await.unwrap();
        s.commit(WriteBatch::new().put("j", "w")).await.unwrap();
    }
    let s = h.open().await;
    assert_eq!(s.get(b"k").await.unwrap(), v(b"v", 1));
    assert_eq!(s.get(b"j").await.unwrap(), v(b"w", 2));
    assert_eq!(s.last_commit().await.unwrap(), 2);
    assert_eq!(s.commit(WriteBatch::new().put("k", "v2")).await.unwrap(), 3);
}

/// Values around and far over the size at which an engine may store a value
/// apart from its key (fjall's key-value separation at 1 KiB counts the
/// 8-byte version it stores before each value: 1,016 bytes of ours): each
/// reads back exactly, through overwrites, deletes, compaction and a reopen.
pub async fn values_of_every_size_read_back_through_compaction_and_reopen<H: Harness>(mut h: H) {
    let sizes = [
        0usize, 1, 100, 1015, 1016, 1017, 1023, 1024, 1025, 4096, 70_000, 300_000,
    ];
    // Not all one byte, so that compression cannot hide a mix-up.
    let value = |size: usize, salt: u8| -> Vec<u8> {
        (0..size)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt))
            .collect()
    };
    let key = |size: usize| format!("v/{size:07}");
    {
        let s = h.open().await;
        let mut b = WriteBatch::new();
        for size in sizes {
            b = b.put(key(size), value(size, 1));
        }
        assert_eq!(s.commit(b).await.unwrap(), 1);
        // Overwrite every other one with the mirror size's value (small to
        // large and large to small across the threshold), delete another.
        let mut b = WriteBatch::new();
        for (i, size) in sizes.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
            let other = sizes[sizes.len() - 1 - i];
            b = b.put(key(*size), value(other, 2));
        }
        b = b.delete(key(1017));
        assert_eq!(s.commit(b).await.unwrap(), 2);
        s.compact().await.unwrap();
    }
    let s = h.open().await;
    let mut expected = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let want = if *size == 1017 {
            None
        } else if i % 2 == 0 {
            v(&value(sizes[sizes.len() - 1 - i], 2), 2)
        } else {
            v(&value(*size, 1), 1)
        };
        assert_eq!(s.get(key(*size).as_bytes()).await.unwrap(), want, "{size}");
        if let Some(w) = want {
            expected.push((key(*size).into_bytes(), w));
        }
    }
    assert_eq!(
        s.range(b"v/", Some(b"v0".as_slice()), 100).await.unwrap(),
        expected
    );
    expected.reverse();
    assert_eq!(s.range_rev(b"v/", b"v0", 100).await.unwrap(), expected);
}

/// Expands to one `#[tokio::test]` per conformance case. `$harness` is an
/// expression that builds a fresh [`Harness`] for each case.
#[macro_export]
macro_rules! state_store_conformance {
    ($harness:expr) => {
        $crate::state_store_conformance!(@cases $harness;
            an_empty_store_has_no_keys_and_no_commits,
            each_commit_gets_the_next_number_and_its_keys_take_it_as_version,
            a_later_op_on_the_same_key_in_one_batch_wins,
            delete_removes_a_key,
            a_failed_version_check_writes_nothing_from_the_batch,
            version_checks_pass_on_the_current_version_and_on_absence,
            prefix_scans_are_ordered_bounded_and_exact,
            range_scans_include_the_start_and_exclude_the_end,
            last_in_range_finds_the_greatest_key_below_the_end,
            reverse_range_scans_descend_and_stop_at_the_limit,
            binary_keys_with_high_bytes_scan_correctly,
            an_empty_key_is_refused,
            committed_data_survives_a_reopen,
            values_of_every_size_read_back_through_compaction_and_reopen,
        );
    };
    (@cases $harness:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                $crate::store::conformance::$case($harness).await;
            }
        )*
    };
}
