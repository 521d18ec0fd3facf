// An independent signer for the staker's unbonding PSBT: bitcoinjs-lib (with
// @bitcoinerlab/secp256k1 and ecpair) signs input 0 through the script path, as a wallet built on
// it would. Nothing here comes from the Rust code: the leaf hash is computed from the PSBT's
// tapLeafScript, the sighash by bitcoinjs-lib from the PSBT's own fields.
//
//   node sign.mjs IN.psbt SECRET_KEY_HEX OUT.psbt
//
// Writes the signed PSBT (base64) to OUT.psbt and a JSON line to stdout: the signing key, the
// leaf hash and the signature. Exits non-zero with the library's message when it cannot sign.

import { readFileSync, writeFileSync } from 'node:fs';
import * as ecc from '@bitcoinerlab/secp256k1';
import * as bitcoin from 'bitcoinjs-lib';
import { ECPairFactory } from 'ecpair';

bitcoin.initEccLib(ecc);
const ECPair = ECPairFactory(ecc);

function compactSize(n) {
  if (n < 0xfd) return Uint8Array.of(n);
  if (n <= 0xffff) return Uint8Array.of(0xfd, n & 0xff, n >> 8);
  throw new Error(`leaf script of ${n} bytes is longer than any staking leaf`);
}

// BIP341: tagged_hash("TapLeaf", leaf_version || compact_size(len) || script).
function tapLeafHash(leafVersion, script) {
  const data = new Uint8Array(1 + 3 + script.length);
  const size = compactSize(script.length);
  data.set([leafVersion], 0);
  data.set(size, 1);
  data.set(script, 1 + size.length);
  return bitcoin.crypto.taggedHash('TapLeaf', data.subarray(0, 1 + size.length + script.length));
}

const hex = (bytes) => Buffer.from(bytes).toString('hex');

const [inPath, secretHex, outPath] = process.argv.slice(2);
if (!inPath || !secretHex || !outPath) {
  console.error('usage: node sign.mjs IN.psbt SECRET_KEY_HEX OUT.psbt');
  process.exit(2);
}
const psbt = bitcoin.Psbt.fromBase64(readFileSync(inPath, 'utf8').trim());
const signer = ECPair.fromPrivateKey(Buffer.from(secretHex, 'hex'));
const leaves = psbt.data.inputs[0].tapLeafScript ?? [];
if (leaves.length !== 1) {
  console.error(`expected one tap leaf script in input 0, found ${leaves.length}`);
  process.exit(1);
}
const leafHash = tapLeafHash(leaves[0].leafVersion, leaves[0].script);
psbt.signTaprootInput(0, signer, leafHash);

// What was added must verify under bitcoinjs-lib's own sighash before it leaves this process.
const valid = psbt.validateSignaturesOfInput(0, (pubkey, msghash, signature) =>
  ecc.verifySchnorr(msghash, pubkey, signature),
);
if (!valid) {
  console.error('bitcoinjs-lib produced a signature it does not verify');
  process.exit(1);
}
writeFileSync(outPath, `${psbt.toBase64()}\n`);
const sig = psbt.data.inputs[0].tapScriptSig.find(
  (s) => Buffer.compare(Buffer.from(s.leafHash), Buffer.from(leafHash)) === 0,
);
console.log(
  JSON.stringify({
    pubkey: hex(sig.pubkey),
    leaf_hash: hex(leafHash),
    signature: hex(sig.signature),
  }),
);
