"""Seeds a migrated API SQLite database with reference-shaped rows so schemathesis exercises
non-empty responses: a staker with more delegations than one page in every state, stats for a
finality provider and the staker, overall stats and BTC info. The hashes and keys are listed
in schemathesis.toml as dictionaries, so part of the generated requests hit these rows.
Values come from the API fixtures (the unbonding golden vector's delegation)."""

import json
import sqlite3
import sys

db, golden_path = sys.argv[1], sys.argv[2]
g = json.load(open(golden_path))["active_staking_event"]
staker, fp = g["staker_pk_hex"], g["finality_provider_pk_hex"]
states = ["active", "unbonding_requested", "unbonding", "unbonded", "withdrawn"]
con = sqlite3.connect(db, timeout=30)
rows = []
for i in range(13):
    state = states[i % len(states)]
    tx_hash = g["staking_tx_hash_hex"] if i == 0 else "%064x" % (0x5EED00 + i)  # see schemathesis.toml
    unbonding = state in ("unbonding", "unbonded", "withdrawn") and i % 2 == 0
    rows.append((
        tx_hash, staker, fp, g["staking_value"], state, g["staking_tx_hex"],
        g["staking_output_index"], g["staking_start_timestamp"] + i,
        g["staking_start_height"] + i, g["staking_timelock"],
        g["staking_tx_hex"] if unbonding else None, 0 if unbonding else None,
        g["staking_start_timestamp"] + 100 if unbonding else None,
        g["staking_start_height"] + 10 if unbonding else None, 5 if unbonding else None,
        i % 4 == 3,
    ))
con.executemany(
    "INSERT OR IGNORE INTO api_delegations VALUES (" + ",".join("?" * 16) + ")", rows)
con.execute("INSERT OR REPLACE INTO api_fp_stats VALUES (?, 300000, 1300000, 3, 13)", (fp,))
con.execute("INSERT OR REPLACE INTO api_staker_stats VALUES (?, 300000, 1300000, 3, 13)", (staker,))
con.execute("INSERT OR REPLACE INTO api_overall_stats VALUES (0, 300000, 1300000, 3, 13, 1)")
con.execute("INSERT OR REPLACE INTO api_btc_info VALUES (0, 300, 1300000, 1500000)")
con.commit()
print("seeded %d delegations for staker %s" % (len(rows), staker))
