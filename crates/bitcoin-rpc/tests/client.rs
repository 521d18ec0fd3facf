//! The client against a scripted fake node: requests on the wire, results parsed into
//! `bitcoin` types, and every failure mode classified transient or permanent.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bitcoin::consensus::encode::serialize_hex;
use bitcoin::hashes::Hash;
use bitcoin::{Amount, BlockHash, Txid};
use bitcoin_rpc::{codes, AcceptOutcome, RpcAuth, RpcClient, RpcConfig, RpcError};
use serde_json::{json, Value};
use support::{make_block, serve, Reply, Seen};

fn user_pass() -> RpcAuth {
    RpcAuth::UserPass {
        user: "alice".into(),
        password: "secret".into(),
    }
}

fn client(url: &str, auth: RpcAuth) -> RpcClient {
    RpcClient::new(RpcConfig {
        url: url.to_owned(),
        auth,
        timeout: Duration::from_secs(5),
        max_response_bytes: bitcoin_rpc::DEFAULT_MAX_RESPONSE_BYTES,
        tls: Default::default(),
    })
    .unwrap()
}

fn basic(user: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

#[tokio::test]
async fn a_typed_call_sends_a_json_rpc_request_with_positional_params_and_basic_auth() {
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let log = Arc::clone(&seen);
    let hash = BlockHash::from_byte_array([7; 32]);
    let url = serve(move |request| {
        log.lock().unwrap().push(request.clone());
        Reply::result(json!(hash.to_string()))
    })
    .await;

    let got = client(&url, user_pass()).get_block_hash(42).await.unwrap();

    assert_eq!(got, hash);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "getblockhash");
    assert_eq!(seen[0].params, vec![json!(42)]);
    assert_eq!(seen[0].body["jsonrpc"], json!("1.0"));
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some(basic("alice", "secret").as_str())
    );
}

#[tokio::test]
async fn an_rpc_error_in_an_http_500_body_keeps_bitcoin_cores_code_and_message() {
    let url = serve(|_| Reply::error(-8, "Block height out of range")).await;

    let err = client(&url, user_pass())
        .get_block_hash(1_000_000)
        .await
        .unwrap_err();

    let RpcError::Rpc { code, message } = &err else {
        panic!("expected an RPC error, got {err:?}");
    };
    assert_eq!(*code, codes::INVALID_PARAMETER);
    assert_eq!(message, "Block height out of range");
    assert!(!err.is_transient());
}

#[tokio::test]
async fn an_unknown_method_answered_with_404_is_an_rpc_error_with_code_minus_32601() {
    let url = serve(|_| Reply::error(-32601, "Method not found")).await;

    let err = client(&url, user_pass())
        .call::<Value>("nosuchmethod", &[])
        .await
        .unwrap_err();

    assert_eq!(err.code(), Some(codes::METHOD_NOT_FOUND));
    assert!(!err.is_transient());
}

#[tokio::test]
async fn a_node_warming_up_answers_minus_28_which_is_transient() {
    let url = serve(|_| Reply::error(-28, "Loading block index…")).await;

    let err = client(&url, user_pass())
        .get_block_count()
        .await
        .unwrap_err();

    assert_eq!(err.code(), Some(codes::IN_WARMUP));
    assert!(err.is_transient());
}

#[tokio::test]
async fn a_refused_connection_is_a_transient_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    drop(listener);

    let err = client(&url, user_pass())
        .get_block_count()
        .await
        .unwrap_err();

    assert!(matches!(err, RpcError::Connect { .. }), "{err:?}");
    assert!(err.is_transient());
    assert!(err.to_string().contains(&url), "{err}");
}

#[tokio::test]
async fn a_node_slower_than_the_timeout_gives_a_transient_timeout_error() {
    let url = serve(|_| Reply::result(json!(1)).after(Duration::from_secs(3))).await;
    let client = RpcClient::new(RpcConfig {
        url,
        auth: user_pass(),
        timeout: Duration::from_millis(200),
        max_response_bytes: bitcoin_rpc::DEFAULT_MAX_RESPONSE_BYTES,
        tls: Default::default(),
    })
    .unwrap();

    let started = std::time::Instant::now();
    let err = client.get_block_count().await.unwrap_err();

    assert!(
        matches!(err, RpcError::Timeout { timeout, .. } if timeout == Duration::from_millis(200)),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_full_work_queue_503_without_json_is_a_transient_http_error() {
    let url = serve(|_| Reply::status(503, "Work queue depth exceeded")).await;

    let err = client(&url, user_pass())
        .get_block_count()
        .await
        .unwrap_err();

    assert!(
        matches!(&err, RpcError::Http { status: 503, body, .. } if body == "Work queue depth exceeded"),
        "{err:?}"
    );
    assert!(err.is_transient());
}

#[tokio::test]
async fn wrong_credentials_are_a_permanent_unauthorized_error() {
    let url = serve(|_| Reply::status(401, "")).await;

    let err = client(&url, user_pass())
        .get_block_count()
        .await
        .unwrap_err();

    assert!(matches!(err, RpcError::Unauthorized { .. }), "{err:?}");
    assert!(!err.is_transient());
}

#[tokio::test]
async fn the_cookie_file_is_read_again_when_the_node_restarted_with_a_new_cookie() {
    let dir = tempfile::tempdir().unwrap();
    let cookie = dir.path().join(".cookie");
    std::fs::write(&cookie, "__cookie__:first").unwrap();
    let accepted = Arc::new(Mutex::new(basic("__cookie__", "first")));
    let requests = Arc::new(AtomicUsize::new(0));
    let (accepted_by_node, counter) = (Arc::clone(&accepted), Arc::clone(&requests));
    let url = serve(move |request| {
        counter.fetch_add(1, Ordering::SeqCst);
        if request.authorization.as_deref() == Some(accepted_by_node.lock().unwrap().as_str()) {
            Reply::result(json!(7))
        } else {
            Reply::status(401, "")
        }
    })
    .await;
    let client = client(&url, RpcAuth::Cookie(cookie.clone()));
    assert_eq!(client.get_block_count().await.unwrap(), 7);

    // The node restarts: new cookie on disk, old one refused.
    std::fs::write(&cookie, "__cookie__:second\n").unwrap();
    *accepted.lock().unwrap() = basic("__cookie__", "second");

    assert_eq!(client.get_block_count().await.unwrap(), 7);
    assert_eq!(
        requests.load(Ordering::SeqCst),
        3,
        "one refused, one retried"
    );
}

#[tokio::test]
async fn a_missing_cookie_file_is_transient_since_the_node_may_not_have_started() {
    let dir = tempfile::tempdir().unwrap();
    let url = serve(|_| Reply::result(json!(1))).await;

    let err = client(&url, RpcAuth::Cookie(dir.path().join(".cookie")))
        .get_block_count()
        .await
        .unwrap_err();

    assert!(matches!(err, RpcError::Cookie { .. }), "{err:?}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn a_cookie_file_without_a_colon_is_a_permanent_format_error() {
    let dir = tempfile::tempdir().unwrap();
    let cookie = dir.path().join(".cookie");
    std::fs::write(&cookie, "garbage").unwrap();
    let url = serve(|_| Reply::result(json!(1))).await;

    let err = client(&url, RpcAuth::Cookie(cookie))
        .get_block_count()
        .await
        .unwrap_err();

    assert!(matches!(err, RpcError::CookieFormat { .. }), "{err:?}");
    assert!(!err.is_transient());
}

#[tokio::test]
async fn a_result_of_the_wrong_shape_is_a_permanent_decode_error_naming_the_method() {
    let url = serve(|_| Reply::result(json!("not a number"))).await;

    let err = client(&url, user_pass())
        .get_block_count()
        .await
        .unwrap_err();

    assert!(matches!(err, RpcError::Decode { .. }), "{err:?}");
    assert!(err.to_string().contains("getblockcount"), "{err}");
    assert!(!err.is_transient());
}

#[tokio::test]
async fn raw_blocks_and_headers_are_decoded_from_hex() {
    let block = make_block(BlockHash::from_byte_array([1; 32]), 5, 9);
    let (block_hex, header_hex) = (serialize_hex(&block), serialize_hex(&block.header));
    let hash = block.block_hash();
    let url = serve(
        move |request| match (request.method.as_str(), request.params.get(1)) {
            ("getblock", Some(v)) if *v == json!(0) => Reply::result(json!(block_hex)),
            ("getblockheader", Some(v)) if *v == json!(false) => Reply::result(json!(header_hex)),
            _ => Reply::error(-1, "unexpected request"),
        },
    )
    .await;
    let client = client(&url, user_pass());

    assert_eq!(client.get_block(&hash).await.unwrap(), block);
    assert_eq!(client.get_block_header(&hash).await.unwrap(), block.header);
}

#[tokio::test]
async fn invalid_hex_from_the_node_is_a_decode_error() {
    let url = serve(|_| Reply::result(json!("zz"))).await;

    let err = client(&url, user_pass())
        .get_block(&BlockHash::all_zeros())
        .await
        .unwrap_err();

    assert!(matches!(err, RpcError::Decode { .. }), "{err:?}");
}

#[tokio::test]
async fn gettxout_of_a_spent_output_is_none() {
    let url = serve(|request| {
        assert_eq!(request.params[2], json!(true));
        Reply::result(Value::Null)
    })
    .await;

    let out = client(&url, user_pass())
        .get_tx_out(&Txid::all_zeros(), 0, true)
        .await
        .unwrap();

    assert_eq!(out, None);
}

#[tokio::test]
async fn testmempoolaccept_sends_the_hex_and_returns_one_verdict_per_tx() {
    let block = make_block(BlockHash::all_zeros(), 1, 1);
    let tx = block.txdata[0].clone();
    let (txid, expected_hex) = (tx.compute_txid(), serialize_hex(&tx));
    let url = serve(move |request| {
        assert_eq!(request.params, vec![json!([expected_hex])]);
        Reply::result(json!([{
            "txid": txid.to_string(), "wtxid": txid.to_string(),
            "allowed": false, "reject-reason": "missing-inputs"
        }]))
    })
    .await;

    let verdicts = client(&url, user_pass())
        .test_mempool_accept(&[tx])
        .await
        .unwrap();

    assert_eq!(verdicts.len(), 1);
    assert_eq!(verdicts[0].txid, txid);
    assert_eq!(
        verdicts[0].outcome,
        AcceptOutcome::Rejected {
            reason: "missing-inputs".into()
        }
    );
}

#[tokio::test]
async fn a_verbose_transaction_reports_its_block_and_confirmations() {
    let block = make_block(BlockHash::all_zeros(), 1, 1);
    let tx = block.txdata[0].clone();
    let block_hash = block.block_hash();
    let hex = serialize_hex(&tx);
    let url = serve(move |request| {
        assert_eq!(request.params[1], json!(true));
        Reply::result(json!({
            "txid": request.params[0], "hex": hex, "blockhash": block_hash.to_string(),
            "confirmations": 12, "blocktime": 1_700_000_001
        }))
    })
    .await;

    let info = client(&url, user_pass())
        .get_raw_transaction_info(&tx.compute_txid())
        .await
        .unwrap();

    assert_eq!(info.transaction, tx);
    assert_eq!(info.confirmed_in(), Some((block_hash, 12)));
}

#[tokio::test]
async fn a_mempool_entry_reports_its_fee_from_fees_base() {
    let url = serve(|_| {
        Reply::result(json!({
            "vsize": 141, "weight": 561, "time": 1_700_000_000, "height": 101,
            "fees": {"base": 0.00000282, "modified": 0.00000282, "ancestor": 0.00000282, "descendant": 0.00000282},
            "depends": [], "spentby": [], "bip125-replaceable": false, "unbroadcast": false
        }))
    })
    .await;

    let entry = client(&url, user_pass())
        .get_mempool_entry(&Txid::all_zeros())
        .await
        .unwrap();

    assert_eq!(entry.fee, Amount::from_sat(282));
    assert_eq!(entry.vsize, 141);
    assert_eq!(entry.height, 101);
}

#[tokio::test]
async fn an_answer_over_the_response_limit_is_abandoned_as_too_large_and_not_retried() {
    let url = serve(|_| Reply::result(json!("ab".repeat(40_000)))).await;
    let mut config = RpcConfig::new(url, user_pass());
    config.max_response_bytes = 64 * 1024;
    let err = RpcClient::new(config)
        .unwrap()
        .call::<String>("getblock", &[])
        .await
        .unwrap_err();
    assert!(
        matches!(err, RpcError::TooLarge { limit: 65_536, .. }),
        "{err:?}"
    );
    assert!(!err.is_transient());
    assert!(err.to_string().contains("larger than 65536 bytes"), "{err}");
}
