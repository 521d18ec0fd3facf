// A real browser against `stakingd devnet`, as the staking dApp uses it: a page served from
// another origin fetch()es the devnet's Esplora REST (`${NEXT_PUBLIC_MEMPOOL_API}/signet/api/…`)
// and the staking API (`${NEXT_PUBLIC_API_URL}/v1/…`) — CORS and shapes as the browser sees
// them — a staking tx is built with btc-staking-ts (the dApp's library) from the UTXOs the page
// read, signed here, broadcast by the page through `POST tx`, and reaches `active` in the API.
//
// STAKINGD (default ../../target/debug/stakingd) and CHROMIUM (default /usr/bin/chromium).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import http from "node:http";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import * as bitcoin from "bitcoinjs-lib";
import * as ecc from "@bitcoin-js/tiny-secp256k1-asmjs";
import { ECPairFactory } from "ecpair";
import { initBTCCurve, StakingScriptData, stakingTransaction } from "btc-staking-ts";

const here = path.dirname(fileURLToPath(import.meta.url));
const STAKINGD = process.env.STAKINGD ?? path.resolve(here, "../../target/debug/stakingd");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

initBTCCurve();
bitcoin.initEccLib(ecc);
const ECPair = ECPairFactory(ecc);
// The dApp's wallets are signet wallets: `tb1…` addresses.
const network = bitcoin.networks.testnet;

/// Starts `stakingd devnet` on free ports; resolves with what its banner printed.
function startDevnet(datadir) {
  const child = spawn(
    STAKINGD,
    ["devnet", "--rpc-port", "0", "--api-port", "0", "--esplora-port", "0",
      "--block-interval", "1", "--datadir", datadir],
    { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, RUST_LOG: "warn" } },
  );
  let out = "";
  const printed = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no banner within 180 s:\n${out}`)), 180_000);
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const api = /^NEXT_PUBLIC_API_URL=(\S+)$/m.exec(out);
      const mempool = /^NEXT_PUBLIC_MEMPOOL_API=(\S+)$/m.exec(out);
      const rpc = /^RPC URL:\s+(\S+)$/m.exec(out);
      if (api && mempool && rpc) {
        clearTimeout(timer);
        resolve({ api: api[1], mempool: mempool[1], rpc: rpc[1] });
      }
    });
    child.on("exit", (code) => reject(new Error(`stakingd devnet exited (${code}):\n${out}`)));
  });
  return { child, printed };
}

/// Serves one HTML page on its own origin (another port than the REST and the API).
function servePage() {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { "Content-Type": "text/html" });
    res.end("<!doctype html><title>dApp stand-in</title><p>staking</p>");
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

async function rpc(url, method, params) {
  const r = await fetch(url, {
    method: "POST",
    headers: { Authorization: "Basic " + Buffer.from("devnet:devnet").toString("base64") },
    body: JSON.stringify({ method, params, id: 1 }),
  });
  const body = await r.json();
  if (body.error) throw new Error(`${method}: ${JSON.stringify(body.error)}`);
  return body.result;
}

async function until(what, timeoutMs, probe) {
  const started = Date.now();
  for (;;) {
    const got = await probe();
    if (got) return got;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

test("a page of another origin stakes through the devnet's REST and API with btc-staking-ts", { timeout: 420_000 }, async () => {
  const datadir = fs.mkdtempSync(path.join(os.tmpdir(), "browser-devnet-"));
  const devnet = startDevnet(datadir);
  const page_server = await servePage();
  let browser;
  try {
    const urls = await devnet.printed;
    const origin = `http://127.0.0.1:${page_server.address().port}`;
    assert.notEqual(new URL(origin).port, new URL(urls.mempool).port);

    // The staker's wallet: a taproot key, shown as `tb1p…`, funded by the faucet.
    const keyPair = ECPair.makeRandom({ network });
    const xonly = Buffer.from(keyPair.publicKey.subarray(1, 33));
    const { address } = bitcoin.payments.p2tr({ internalPubkey: xonly, network });
    assert.match(address, /^tb1p/);
    await rpc(urls.rpc, "faucet", [address, 0.01]);

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    });
    const page = await browser.newPage();
    await page.goto(origin);

    // What the dApp reads, read by the page with fetch() across origins.
    const seen = await page.evaluate(async ({ api, mempool, address }) => {
      const get = async (url) => {
        const r = await fetch(url);
        if (!r.ok) throw new Error(`${url}: ${r.status} ${await r.text()}`);
        const type = r.headers.get("content-type") ?? "";
        return type.includes("json") ? r.json() : r.text();
      };
      const base = `${mempool}/signet/api`;
      const utxos = await get(`${base}/address/${address}/utxo`);
      const ordinals = await fetch(`${api}/v1/ordinals/verify-utxos`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ utxos: utxos.map((u) => ({ txid: u.txid, vout: u.vout })), address }),
      });
      return {
        height: Number(await get(`${base}/blocks/tip/height`)),
        fees: await get(`${base}/v1/fees/recommended`),
        balance: await get(`${base}/address/${address}`),
        utxos,
        validated: await get(`${base}/v1/validate-address/${address}`),
        params: await get(`${api}/v1/global-params`),
        fps: await get(`${api}/v1/finality-providers`),
        ordinals: { status: ordinals.status, body: await ordinals.json() },
      };
    }, { ...urls, address });

    assert.ok(seen.height > 0);
    for (const k of ["fastestFee", "halfHourFee", "hourFee", "economyFee", "minimumFee"]) {
      assert.equal(typeof seen.fees[k], "number", k);
    }
    assert.equal(seen.balance.address, address);
    assert.equal(seen.balance.chain_stats.funded_txo_sum, 1_000_000);
    assert.equal(seen.utxos.length, 1);
    assert.equal(seen.utxos[0].status.confirmed, true);
    assert.equal(seen.validated.isvalid, true);
    assert.equal(seen.ordinals.status, 200, JSON.stringify(seen.ordinals.body));
    assert.equal(seen.ordinals.body.data[0].inscription, false);

    // The staking tx, as the dApp builds it with btc-staking-ts.
    const version = seen.params.data.versions.at(-1);
    const fp = Buffer.from(seen.fps.data[0].btc_pk, "hex");
    // As the dApp: compressed keys lose their parity byte.
    const covenants = version.covenant_pks.map((k) => {
      const key = Buffer.from(k, "hex");
      return key.length === 33 ? key.subarray(1) : key;
    });
    const stakingTime = Math.max(version.min_staking_time, 100);
    const scripts = new StakingScriptData(
      xonly, [fp], covenants, version.covenant_quorum, stakingTime,
      version.unbonding_time, Buffer.from(version.tag, "hex"),
    ).buildScripts();
    const inputs = seen.utxos.map((u) => ({
      txid: u.txid, vout: u.vout, value: u.value, scriptPubKey: seen.validated.scriptPubKey,
    }));
    const amount = Math.max(version.min_staking_amount, 100_000);
    const { psbt } = stakingTransaction(
      scripts, amount, address, inputs, network, seen.fees.fastestFee, xonly,
    );
    const tweaked = keyPair.tweak(bitcoin.crypto.taggedHash("TapTweak", xonly));
    psbt.signAllInputs(tweaked);
    psbt.finalizeAllInputs();
    const tx = psbt.extractTransaction();

    // Broadcast by the page through the REST.
    const broadcast = await page.evaluate(async ({ mempool, hex }) => {
      const r = await fetch(`${mempool}/signet/api/tx`, { method: "POST", body: hex });
      return { status: r.status, body: await r.text() };
    }, { ...urls, hex: tx.toHex() });
    assert.deepEqual(broadcast, { status: 200, body: tx.getId() });

    const delegation = await until("the delegation to become active", 180_000, async () => {
      const r = await page.evaluate(async ({ api, pk }) => {
        const r = await fetch(`${api}/v1/staker/delegations?staker_btc_pk=${pk}`);
        return r.json();
      }, { ...urls, pk: xonly.toString("hex") });
      const d = r.data?.find((x) => x.staking_tx_hash_hex === tx.getId());
      return d?.state === "active" ? d : undefined;
    });
    assert.equal(delegation.staker_pk_hex, xonly.toString("hex"));
    const status = await page.evaluate(async ({ mempool, txid }) => {
      const r = await fetch(`${mempool}/signet/api/tx/${txid}/status`);
      return r.json();
    }, { ...urls, txid: tx.getId() });
    assert.equal(status.confirmed, true);
  } finally {
    await browser?.close();
    page_server.close();
    devnet.child.kill("SIGTERM");
    await new Promise((r) => (devnet.child.exitCode !== null ? r() : devnet.child.on("exit", r)));
    fs.rmSync(datadir, { recursive: true, force: true });
  }
});
