"""ADR 0007 sizing: SQLite (Python's sqlite3, same engine as rusqlite's
bundled one, a slower driver) at 10^7 movements. Not product code."""
import csv, random, sqlite3, sys, time, os, statistics
N = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
path = sys.argv[2] if len(sys.argv) > 2 else 'analytics-sizing.db'
if os.path.exists(path): os.remove(path)
rows = list(csv.DictReader(open(os.environ.get('DIVISIONS', os.path.join(os.path.dirname(os.path.abspath(__file__)), '../../../../shared/data/hebei-divisions.csv')))))
code = {r['code']: i for i, r in enumerate(rows)}
parent = {code[r['code']]: (code[r['parent']] if r['parent'] else None) for r in rows}
level = {code[r['code']]: r['level'] for r in rows}
cities = [o for o in parent if level[o] == 'municipal']
counties = [o for o in parent if level[o] == 'county']
prov = code['130000']; central = code['000000']
db = sqlite3.connect(path)
db.executescript('''
PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-65536;
CREATE TABLE division(org INTEGER PRIMARY KEY, parent INTEGER, level TEXT);
CREATE TABLE subtree(ancestor INTEGER, org INTEGER, PRIMARY KEY(ancestor, org)) WITHOUT ROWID;
CREATE TABLE movement(height INTEGER, idx INTEGER, kind INTEGER, from_org INTEGER, to_org INTEGER,
  program INTEGER, class INTEGER, day INTEGER, amount INTEGER, PRIMARY KEY(height, idx)) WITHOUT ROWID;
CREATE TABLE flow(org INTEGER, program INTEGER, class INTEGER, month INTEGER, kind INTEGER,
  amount INTEGER, n INTEGER, PRIMARY KEY(org, program, class, month, kind)) WITHOUT ROWID;
CREATE TABLE flow_month(org INTEGER, month INTEGER, kind INTEGER, amount INTEGER, n INTEGER,
  PRIMARY KEY(org, month, kind)) WITHOUT ROWID;
CREATE TABLE flow_program(org INTEGER, program INTEGER, kind INTEGER, amount INTEGER, n INTEGER,
  PRIMARY KEY(org, program, kind)) WITHOUT ROWID;
CREATE TABLE cursor(height INTEGER);
''')
db.executemany('INSERT INTO division VALUES(?,?,?)', [(o, parent[o], level[o]) for o in parent])
sub = []
for o in parent:
    a = o
    while a is not None:
        sub.append((a, o)); a = parent[a]
db.executemany('INSERT INTO subtree VALUES(?,?)', sub)
db.commit()
# kinds: 0 appropriate 1 allocate 2 acknowledge 3 disburse 4 recover
rnd = random.Random(7)
BATCH = 10_000; t0 = time.perf_counter(); done = 0; height = 0
while done < N:
    facts = []; agg = {}; aggm = {}; aggp = {}
    for i in range(min(BATCH, N - done)):
        r = rnd.random()
        if r < 0.02: k, f, t = 1, prov, rnd.choice(cities)
        elif r < 0.10: c = rnd.choice(counties); k, f, t = 1, parent[c], c
        elif r < 0.20: k, f, t = 2, rnd.choice(counties), rnd.choice(counties)
        elif r < 0.99: k, f, t = 3, rnd.choice(counties), 0
        else: k, f, t = 4, rnd.choice(counties), 0
        p = rnd.randrange(50); cl = rnd.randrange(200); day = (done + i) * 365 // N
        amt = rnd.randrange(1, 10_000_000)
        idx = (done + i) % 500
        if idx == 0: height += 1
        facts.append((height, idx, k, f, t, p, cl, day, amt))
        for org in ((f, t) if k == 1 else (f,)):
            key = (org, p, cl, day // 31, k if org == f else 5)
            a = agg.get(key); agg[key] = (a[0] + amt, a[1] + 1) if a else (amt, 1)
            km = (key[0], key[3], key[4]); a = aggm.get(km); aggm[km] = (a[0] + amt, a[1] + 1) if a else (amt, 1)
            kp = (key[0], key[1], key[4]); a = aggp.get(kp); aggp[kp] = (a[0] + amt, a[1] + 1) if a else (amt, 1)
    MODE = os.environ.get('MODE', 'all')
    if MODE == 'gen': agg = {}; aggm = {}; aggp = {}; facts_ = facts; facts = []
    db.executemany('INSERT INTO movement VALUES(?,?,?,?,?,?,?,?,?)', facts)
    if MODE == 'gen': facts = facts_
    if MODE != 'all': agg = {}
    if MODE == 'facts': aggm = {}; aggp = {}
    db.executemany('''INSERT INTO flow VALUES(?,?,?,?,?,?,?) ON CONFLICT(org,program,class,month,kind)
        DO UPDATE SET amount=amount+excluded.amount, n=n+excluded.n''',
        [(*k, a, n) for k, (a, n) in agg.items()])
    db.executemany('''INSERT INTO flow_month VALUES(?,?,?,?,?) ON CONFLICT(org,month,kind)
        DO UPDATE SET amount=amount+excluded.amount, n=n+excluded.n''', [(*k, a, n) for k, (a, n) in aggm.items()])
    db.executemany('''INSERT INTO flow_program VALUES(?,?,?,?,?) ON CONFLICT(org,program,kind)
        DO UPDATE SET amount=amount+excluded.amount, n=n+excluded.n''', [(*k, a, n) for k, (a, n) in aggp.items()])
    db.execute('DELETE FROM cursor'); db.execute('INSERT INTO cursor VALUES(?)', (height,))
    db.commit()
    done += len(facts)
    if done % 1_000_000 == 0: print(f'{done} rows {done/(time.perf_counter()-t0):,.0f}/s', file=sys.stderr)
load = time.perf_counter() - t0
t1 = time.perf_counter(); db.execute('CREATE INDEX movement_from ON movement(from_org, day)'); db.commit(); idx_s = time.perf_counter() - t1
def timed(sql, args_fn, n=200):
    ts = []
    for _ in range(n):
        a = args_fn(); s = time.perf_counter(); db.execute(sql, a).fetchall(); ts.append((time.perf_counter() - s) * 1000)
    ts.sort(); return round(ts[len(ts)//2], 2), round(ts[int(len(ts)*0.99)-1], 2)
overview = '''SELECT s.ancestor, f.kind, SUM(f.amount), SUM(f.n) FROM division d JOIN subtree s ON s.ancestor=d.org
  JOIN flow_month f ON f.org=s.org WHERE d.parent=? GROUP BY s.ancestor, f.kind'''
county = '''SELECT program, kind, SUM(amount), SUM(n) FROM flow_program WHERE org=? GROUP BY program, kind'''
trend = '''SELECT f.month, f.kind, SUM(f.amount) FROM subtree s JOIN flow_month f ON f.org=s.org WHERE s.ancestor=? GROUP BY f.month, f.kind'''
idle = '''SELECT from_org, COUNT(*), SUM(amount) FROM movement WHERE from_org=? AND day < ? GROUP BY from_org'''
res = {
  'rows': N, 'load_s': round(load, 1), 'rows_per_s': round(N / load),
  'index_build_s': round(idx_s, 1), 'db_bytes': os.path.getsize(path) + (os.path.getsize(path + '-wal') if os.path.exists(path + '-wal') else 0),
  'flow_rows': db.execute('SELECT COUNT(*) FROM flow').fetchone()[0],
  'flow_class_month_p50_p99_ms': timed('SELECT class, SUM(amount) FROM flow WHERE org=? AND month=? GROUP BY class', lambda: (rnd.choice(counties), rnd.randrange(12)), 100),
  'overview_province_p50_p99_ms': timed(overview, lambda: (prov,)),
  'trend_province_p50_p99_ms': timed(trend, lambda: (prov,)),
  'county_p50_p99_ms': timed(county, lambda: (rnd.choice(counties),)),
  'county_movements_before_day_p50_p99_ms': timed(idle, lambda: (rnd.choice(counties), 270), 50),
}
print(res)
