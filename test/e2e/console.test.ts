import { statSync } from 'node:fs'
import type { Browser, Page } from 'playwright-core'
import t from 'tap'
import type { FindingDetail, FindingList } from '../../backend/console/types.js'
import { startBackend } from '../../backend/server.js'
import { AgentStream, connectCollector, injectScan } from '../../scripts/injector/index.js'
import { packRecords } from '../../shared/codec.js'
import { makeDevice, makeMetadata, makeNetworkActivity } from '../../shared/ocsf/network.js'
import { spawnPicket } from '../helpers/cli.js'
import { requireReal } from '../helpers/env.js'
import { artifactPath, buildPage, CHROMIUM, CRON_RULE, DNS_RULE, fileRecord, launchChromium, launchRecord, NMAP_RULE, startTestBackend, tunnelQueries, until, watchPage, type TestBackend } from './helpers/console.js'

// The operator console in a real browser (Debian's chromium through
// playwright-core) against a real backend (collector, detection workers,
// alert store) fed by the real injector.

const DESKTOP = { width: 1280, height: 800 }
const PHONE = { width: 390, height: 844 }

async function openConsole (browser: Browser, url: string, viewport = DESKTOP): Promise<{ page: Page, w: ReturnType<typeof watchPage>, close: () => Promise<void> }> {
  const ctx = await browser.newContext({ viewport, reducedMotion: 'reduce' })
  const page = await ctx.newPage()
  const w = watchPage(page)
  await page.goto(url)
  await page.locator('#live.live').waitFor({ timeout: 10_000 })
  return { page, w, close: async () => { await ctx.close() } }
}

async function findingId (tb: TestBackend, host: string): Promise<string> {
  return await until(async () => {
    await tb.b.flush()
    return tb.b.store.listFindings({ host }).items[0]?.id
  }, 10_000, `a finding on ${host}`)
}

/** Records in the full OCSF form, one batch, as an agent of `host`. */
async function sendRecords (tb: TestBackend, host: string, records: Array<Record<string, unknown>>): Promise<void> {
  const client = connectCollector(tb.b.collector.address)
  const stream = new AgentStream(client, host, { hostname: host })
  const r = await stream.send(packRecords(records), records.length)
  await stream.end()
  client.close()
  if (r.status !== 'OK') throw new Error(`the batch of ${host} was ${r.status}: ${JSON.stringify(r)}`)
}

async function ruleFindingId (tb: TestBackend, host: string, rule: string): Promise<string> {
  return await until(async () => {
    await tb.b.flush()
    return tb.b.store.listFindings({ host, rule }).items[0]?.id
  }, 15_000, `a ${rule} finding on ${host}`)
}

/** Elements made from finding data would be these; the page itself makes none in main (charts are svg.chart). */
const INJECTED = 'main img, main script, main iframe, main style, main b, main object, main embed, main svg:not(.chart), main a[href^="javascript"]'

if (requireReal(t, { commands: [CHROMIUM] })) {
  buildPage()
  const browser = await launchChromium()
  t.teardown(async () => { await browser.close() })
  const tb = await startTestBackend()
  t.teardown(tb.close)

  t.test('live finding: a scan shipped by picket inject-scan appears without a reload', async t => {
    const { page, w, close } = await openConsole(browser, `${tb.url}/`)
    t.teardown(close)
    await page.locator('p.count', { hasText: 'finding' }).waitFor()
    await page.evaluate(() => { (window as unknown as { __sameDocument: boolean }).__sameDocument = true })
    const listFetches = w.requests.filter(u => u.includes('/api/findings?')).length

    const inject = spawnPicket(['inject-scan', '--collector', tb.b.collector.address, '--host-id', 'live-host', '--hostname', 'live-1.example', '--source', '192.0.2.10', '--ports', '30'], { env: { PICKET_TSX: '1' } })
    t.equal(await inject.exited, 0, `inject-scan: ${inject.stderr()}`)
    t.match(inject.stdout(), /1 port-scan finding/)

    const row = page.locator('tr.row', { hasText: 'live-1.example' })
    await row.waitFor({ timeout: 10_000 })
    t.ok(await row.evaluate(el => el.classList.contains('fresh')), 'a new row is highlighted')
    t.equal(await page.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument), true, 'the page was not reloaded')
    t.equal(w.requests.filter(u => u.includes('/api/findings?')).length, listFetches, 'the row came over the event stream, not a new list fetch')
    // created when the scan crossed the threshold, then updated in place as it went on
    const cells = await until(async () => {
      const c = await row.locator('td').allInnerTexts()
      return c[4]?.trim() === '30' ? c : undefined
    }, 10_000, 'the row to count all 30 ports')
    t.match(cells[0], 'Medium')
    t.match(cells[1], 'T1046')
    t.match(cells[2], 'live-1.example')
    t.match(cells[2], 'live-host')
    t.match(cells[3], '192.0.2.10')
    t.equal(cells[4].trim(), '30')
    t.match(cells[7], 'New')
    t.same(w.dialogs, [])
    t.same(w.errors, [])
  })

  t.test('triage: resolve with a note as the token\'s analyst; after a reload the status and history persist, and the API agrees', async t => {
    await injectScan({ collector: tb.b.collector.address, hostId: 'triage-host', hostname: 'files-3', source: '203.0.113.77', ports: 25 })
    const id = await findingId(tb, 'triage-host')
    // opened without a token, the console reads but cannot triage
    const ro = await openConsole(browser, `${tb.url}/#/findings/${id}`)
    await ro.page.locator('#analyst.read-only').waitFor()
    await ro.page.locator('h1', { hasText: 'files-3' }).waitFor()
    await ro.page.fill('#triage-note', 'looked at it')
    await ro.page.click('button[data-to="in_progress"]')
    await ro.page.locator('#triage-msg.error').waitFor()
    t.match(await ro.page.locator('#triage-msg').innerText(), /needs an access token/, 'a read-only console says triage needs a token')
    t.same(ro.w.errors.filter(e => !/401/.test(e)), [])
    await ro.close()

    const { page, w, close } = await openConsole(browser, `${tb.url}/?access_token=${tb.token}`)
    t.teardown(close)
    t.equal(await page.locator('#analyst-name').innerText(), 'alice', 'the header names the token\'s analyst')

    // from the keyboard: focus the row, Enter opens it
    const row = page.locator(`tr.row[data-id="${id}"]`)
    await row.waitFor()
    await row.focus()
    await page.keyboard.press('Enter')
    await page.waitForURL(/#\/findings\/[0-9a-f-]+$/)
    await page.locator('h1', { hasText: 'files-3' }).waitFor()
    await page.locator('svg.chart').first().waitFor()
    t.equal(await page.locator('svg.chart').count(), 2, 'ports histogram and timeline')
    t.equal(await page.locator('.evidence-table tbody tr').count() > 0, true, 'evidence records are listed')

    // Resolve needs a note
    await page.click('button[data-to="resolved"]')
    t.match(await page.locator('#triage-msg').innerText(), /needs a note/)
    t.equal(await page.locator('#triage-note').getAttribute('aria-invalid'), 'true')
    t.equal(await page.evaluate(() => document.activeElement?.id), 'triage-note', 'focus goes to the note')

    const note = 'Blocked 203.0.113.77 at the edge; files-3 patched.'
    await page.fill('#triage-note', note)
    await page.click('button[data-to="resolved"]')
    await page.locator('#triage-msg.ok').waitFor()
    t.match(await page.locator('#triage-msg').innerText(), 'by alice')
    t.match(await page.locator('.detail-head .status').first().innerText(), 'Resolved')

    await page.reload()
    await page.locator('h1', { hasText: 'files-3' }).waitFor()
    await page.locator('.history-list li').nth(1).waitFor()
    t.match(await page.locator('.detail-head .status').first().innerText(), 'Resolved', 'status persists over a reload')
    const history = await page.locator('.history-list li').allInnerTexts()
    t.equal(history.length, 2)
    t.match(history[0], 'alice')
    t.match(history[0], note)
    t.match(history[0], /New\s*→\s*Resolved/)
    t.match(history[1], 'picket')
    t.equal(await page.locator('button[data-to="resolved"]').isDisabled(), true, 'the current status cannot be chosen again')

    const api = await (await fetch(`${tb.url}/api/findings/${id}`)).json() as FindingDetail
    t.equal(api.status, 'resolved')
    t.equal((api.finding as { status_id: number, status: string }).status_id, 4)
    t.match(api.history[api.history.length - 1], { actor: 'alice', from: 'new', to: 'resolved', note })
    const list = await (await fetch(`${tb.url}/api/findings?status=resolved`)).json() as FindingList
    t.ok(list.items.some(f => f.id === id), 'the list filters agree')
    t.same(w.dialogs, [])
    t.same(w.errors, [])
  })

  t.test('hostile strings: markup in hostnames, sources and fields shows as text and runs nothing', async t => {
    const payloadHost = '<img src=x onerror="window.__pwned=1;alert(1)">'
    const payloadName = '"><svg onload=alert(2)><script>window.__pwned=2</script>'
    const payloadSource = '<script>window.__pwned=3;alert(3)</script>'
    const payloadAgent = '<iframe src="javascript:alert(4)"></iframe>\n\nevent: finding\ndata: {}'
    const { page, w, close } = await openConsole(browser, `${tb.url}/#/findings?status=`)
    t.teardown(close)

    // through the injector library: a hostile hostname on batches and records
    await injectScan({ collector: tb.b.collector.address, hostId: 'xss-a', hostname: payloadHost + payloadName, ports: 20, source: '198.51.100.66' })
    // a raw batch built with shared/codec: a hostile source address and status detail
    const src = { hostId: 'xss-b', hostname: payloadName, agentVersion: payloadAgent, ip: '10.9.9.9' }
    const md = makeMetadata(src)
    const dev = makeDevice(src)
    const scan = (srcIp: string): ReturnType<typeof makeNetworkActivity>[] => Array.from({ length: 20 }, (_, i) => makeNetworkActivity({
      timeMs: Date.now(), activityId: 5, directionId: 1, protocolNum: 6, ipVersion: 4, srcIp, srcPort: 41000 + i,
      dstIp: '10.9.9.9', dstPort: 100 + i, assignmentKnown: true, statusDetail: '<b onmouseover=alert(5)>x</b>', unmapped: { note: '<style>*{display:none}</style>' },
    }, md, dev))
    const client = connectCollector(tb.b.collector.address)
    const stream = new AgentStream(client, 'xss-b', { hostname: src.hostname, agentVersion: src.agentVersion })
    // markup as a source address is not an address: refused before any rule, finding or page sees it
    t.match(await stream.send(packRecords(scan(payloadSource)), 20), { status: 'REFUSED', error: 'PICKET_ERR_RECORD', message: /src_endpoint\.ip/ })
    const records = scan('198.51.100.77')
    t.match(await stream.send(packRecords(records), records.length), { status: 'OK' })
    await stream.end()
    client.close()

    const rowA = page.locator('tr.row', { hasText: 'onerror' })
    const rowB = page.locator('tr.row', { hasText: '198.51.100.77' })
    await rowA.waitFor({ timeout: 10_000 })
    await rowB.waitFor({ timeout: 10_000 })
    t.equal(await rowA.locator('td').nth(2).locator('.strong').innerText(), payloadHost + payloadName, 'the hostname shows verbatim, as text')
    t.equal(await rowB.locator('td').nth(3).innerText(), '198.51.100.77', 'the source of the hostile host\'s scan')
    t.equal(await page.locator('tr.row', { hasText: 'window.__pwned=3' }).count(), 0, 'the refused markup source made no row')
    const injected = await page.evaluate(() => document.querySelectorAll('main img, main script, main iframe, main style, main b, main svg:not(.chart)').length)
    t.equal(injected, 0, 'no element was made from finding data')

    // the detail pages: title, summary, evidence, raw JSON
    for (const row of [rowA, rowB]) {
      await row.click()
      await page.locator('.evidence-table').waitFor()
      const title = await page.locator('h1').innerText()
      t.match(title, /<(img|svg|script)/, 'the title shows the markup as text')
      t.equal(await page.evaluate(() => document.querySelectorAll('main img, main script, main iframe, main style, main b').length), 0)
      await page.locator('details summary', { hasText: 'OCSF' }).click()
      t.match(await page.locator('pre.json').innerText(), /<(img|script)/)
      await page.goBack()
      await page.locator('tr.row').first().waitFor()
    }
    await page.goto(`${tb.url}/#/hosts`)
    const hostRow = page.locator('table.hosts tr', { hasText: 'xss-b' })
    await hostRow.waitFor()
    t.match(await hostRow.innerText(), '<iframe src="javascript:alert(4)">', 'agent version as text')

    t.same(w.dialogs, [], 'no dialog opened')
    t.same(w.errors, [], 'no console error (no CSP violation, no failed injected load)')
    t.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined, 'the sentinel was never set')
    t.notOk(w.requests.some(u => /\/x$|javascript:/.test(u)), 'no request for an injected resource')

    // and if the page ever did hand data to an HTML parser, the CSP would stop it
    const res = await fetch(`${tb.url}/`)
    const csp = res.headers.get('content-security-policy') ?? ''
    t.match(csp, "script-src 'self'")
    t.match(csp, "frame-ancestors 'none'")
    t.notMatch(csp, /unsafe-inline|unsafe-eval|https?:/)
    t.equal(res.headers.get('x-content-type-options'), 'nosniff')
    const sinks = await page.evaluate(() => {
      const out: string[] = []
      try { document.createElement('div').innerHTML = '<img src=x onerror=alert(6)>'; out.push('innerHTML allowed') } catch { out.push('innerHTML blocked') }
      try {
        const s = document.createElement('script')
        s.textContent = 'window.__pwned = 7'
        document.body.appendChild(s)
      } catch { /* Trusted Types refuse script text from a string */ }
      out.push((window as unknown as { __pwned?: number }).__pwned === 7 ? 'inline script ran' : 'inline script blocked')
      return out
    })
    t.same(sinks, ['innerHTML blocked', 'inline script blocked'], 'Trusted Types and the CSP block HTML sinks and inline script')
    t.same(w.dialogs, [])
  })

  t.test('a process finding and a DNS finding: the process tree, the rule with its author and references, the sampled queries; no port-scan wording', async t => {
    await sendRecords(tb, 'proc-host', [launchRecord('proc-host', { exe: '/usr/bin/nmap', cmd: 'nmap -sT -p 1-1000 10.0.0.0/24', user: 'mallory', pid: 3101, parent: { exe: '/usr/bin/bash', cmd: 'bash -i', pid: 3100 }, grandparentPid: 3000 })])
    await sendRecords(tb, 'dns-host', tunnelQueries('dns-host', 'tunnel-example.com', 'iodine'))
    const procId = await ruleFindingId(tb, 'proc-host', NMAP_RULE)
    const dnsId = await ruleFindingId(tb, 'dns-host', DNS_RULE)
    const { page, w, close } = await openConsole(browser, `${tb.url}/#/findings/${procId}`)
    t.teardown(close)

    await page.locator('section.process li.proc-matched').waitFor()
    t.equal(await page.locator('section.process li.proc-matched > .proc-line .proc-path').innerText(), '/usr/bin/nmap', 'the process the rule matched')
    t.equal(await page.locator('section.process li.proc-matched > code.cmd').innerText(), 'nmap -sT -p 1-1000 10.0.0.0/24', 'its command line, as text')
    t.equal(await page.locator('section.process li.proc-matched .proc-user').innerText(), 'mallory', 'its user')
    const chain = await page.locator('section.process li.proc').evaluateAll(els => els.map(e => `${e.getAttribute('data-role') ?? ''} ${e.querySelector('.proc-line .sub.mono')?.textContent ?? ''}`))
    t.same(chain, ['ancestor pid 3000', 'ancestor pid 3100', 'matched pid 3101'], 'ancestors (tree root, parent), then the process, nested')
    t.equal(await page.locator('section.process li.proc-ancestor > code.cmd').innerText(), 'bash -i', 'the parent\'s command line')
    t.equal(await page.locator('section.rule .rule-id').innerText(), NMAP_RULE, 'the rule id is the analytic uid')
    t.equal(await page.locator('section.rule .rule-title').innerText(), 'Linux Network Service Scanning Tools Execution')
    t.match(await page.locator('section.rule .rule-author').innerText(), 'Alejandro Ortuno', 'the author from the rule file')
    const refs = await page.locator('section.rule .rule-refs a').evaluateAll(as => as.map(a => a.getAttribute('href') ?? ''))
    t.equal(refs.length, 3, 'the references, as links')
    t.ok(refs.every(r => r.startsWith('https://')), 'https links only')
    t.equal(await page.locator('section.charts').isHidden(), true, 'no ports chart')
    const summary = await page.locator('section.summary').innerText()
    t.notMatch(summary, /Scanned host|Ports probed/, 'no port-scan wording')
    t.match(summary, /Matching events/)
    await page.evaluate(() => { (document.activeElement as HTMLElement | null)?.blur() })
    const shots = [artifactPath('console-finding-process.png'), artifactPath('console-finding-dns.png')]
    await page.screenshot({ path: shots[0], fullPage: true })

    await page.goto(`${tb.url}/#/findings/${dnsId}`)
    await page.locator('section.dns table.dns-queries').waitFor()
    t.equal(await page.locator('section.dns .dns-domain').innerText(), 'tunnel-example.com', 'the registered domain')
    t.match(await page.locator('section.dns .dns-process').innerText(), 'iodine', 'the process that asked')
    t.equal(await page.locator('section.dns table.dns-queries tbody tr').count(), 20, 'a sample of the queried names')
    t.match(await page.locator('section.dns table.dns-queries caption').innerText(), /20 of 1[0-9]{2} distinct names/)
    t.match(await page.locator('section.dns table.dns-queries tbody tr').first().innerText(), /\.t\.tunnel-example\.com/)
    t.equal(await page.locator('section.charts').isHidden(), true, 'no ports chart')
    t.notMatch(await page.locator('section.summary').innerText(), /Scanned host|Ports probed/)
    t.equal(await page.locator('section.rule .rule-id').innerText(), '0c6f2d84-93a1-4b57-b0e2-6d8e1f4a9c35')
    t.equal(await page.locator('section.rule .rule-author').innerText(), 'Picket')
    await page.evaluate(() => { (document.activeElement as HTMLElement | null)?.blur() })
    await page.screenshot({ path: shots[1], fullPage: true })
    for (const s of shots) t.ok(statSync(s).size > 10_000, `${s} written`)

    // the findings table: no port count for them
    await page.goto(`${tb.url}/#/findings?status=`)
    const row = page.locator(`tr.row[data-id="${procId}"]`)
    await row.waitFor()
    t.equal((await row.locator('td').nth(4).innerText()).trim(), '—', 'a process finding has no ports column value')
    t.same(w.dialogs, [])
    t.same(w.errors, [])
  })

  t.test('filters: by rule and by technique, from the controls, in the URL, and on the server', async t => {
    await sendRecords(tb, 'filter-host', [
      launchRecord('filter-host', { exe: '/usr/bin/nmap', cmd: 'nmap 10.0.0.1', pid: 3201, parent: { exe: '/usr/bin/bash', cmd: 'bash', pid: 3200 } }),
      fileRecord('filter-host', '/etc/cron.d/job', '/usr/bin/tee', 'tee /etc/cron.d/job'),
    ])
    const nmapId = await ruleFindingId(tb, 'filter-host', NMAP_RULE)
    const cronId = await ruleFindingId(tb, 'filter-host', CRON_RULE)
    const { page, w, close } = await openConsole(browser, `${tb.url}/#/findings?status=&host=filter-host`)
    t.teardown(close)
    await page.locator(`tr.row[data-id="${cronId}"]`).waitFor()
    t.equal(await page.locator('tr.row').count(), 2, 'both findings of the host')

    await page.fill('#f-rule', CRON_RULE)
    await page.press('#f-rule', 'Enter')
    await page.waitForURL(new RegExp(`rule=${CRON_RULE}`))
    await until(async () => await page.locator('tr.row').count() === 1 ? true : undefined, 5000, 'one row')
    t.equal(await page.locator(`tr.row[data-id="${cronId}"]`).count(), 1, 'the rule filter keeps the cron finding')

    await page.fill('#f-rule', '')
    await page.fill('#f-technique', 't1046')
    await page.press('#f-technique', 'Enter')
    await page.waitForURL(/technique=T1046/)
    await until(async () => {
      const ids = await page.locator('tr.row').evaluateAll(rs => rs.map(r => (r as HTMLElement).dataset.id))
      return ids.length === 1 && ids[0] === nmapId ? true : undefined
    }, 5000, 'the nmap row alone')
    t.pass('the technique filter keeps the nmap finding (T1046)')

    // an invalid rule is refused by the control, and the table stays as it was
    await page.fill('#f-rule', '<script>')
    await page.press('#f-rule', 'Enter')
    t.equal(await page.locator('#f-rule').evaluate(el => (el as HTMLInputElement).validity.valid), false, 'the control says the rule is not valid')
    t.notMatch(page.url(), /rule=/, 'nothing was applied')

    // a reload keeps the filters the URL carries
    await page.goto(`${tb.url}/#/findings?status=&rule=${NMAP_RULE}&host=filter-host`)
    await page.locator(`tr.row[data-id="${nmapId}"]`).waitFor()
    t.equal(await page.locator('#f-rule').inputValue(), NMAP_RULE)
    t.equal(await page.locator('tr.row').count(), 1)

    const api = await (await fetch(`${tb.url}/api/findings?rule=${CRON_RULE}&technique=T1053.003&host=filter-host`)).json() as FindingList
    t.same(api.items.map(f => f.id), [cronId], 'the API agrees')
    t.equal((await fetch(`${tb.url}/api/findings?rule=${encodeURIComponent('<script>')}`)).status, 400)
    t.same(w.dialogs, [])
    t.same(w.errors, [])
  })

  t.test('hostile strings in command lines and file names: shown literally, nothing runs', async t => {
    const exe = '/tmp/<img src=x onerror="window.__pwned=8;alert(8)">/nmap'
    const cmd = 'nmap \'</script><script>window.__pwned=9;alert(9)</script>\' <img src=x onerror=alert(10)> javascript:alert(11) "><svg onload=alert(12)>'
    const parentCmd = 'bash -c "<iframe src=javascript:alert(13)></iframe>" </textarea><b onmouseover=alert(14)>x</b>'
    const user = '<style>*{display:none}</style>root'
    const filePath = '/etc/cron.d/<img src=x onerror="window.__pwned=15">\u202e</script><a href="javascript:alert(16)">x</a>'
    const fileCmd = 'tee "</script><script>alert(17)</script>" javascript:alert(18)'
    await sendRecords(tb, 'xss-proc', [
      launchRecord('xss-proc', { exe, cmd, user, pid: 6101, parent: { exe: '/usr/bin/<svg/onload=alert(19)>', cmd: parentCmd, pid: 6100 } }),
      fileRecord('xss-proc', filePath, '/usr/bin/tee', fileCmd),
    ])
    const procId = await ruleFindingId(tb, 'xss-proc', NMAP_RULE)
    const fileId = await ruleFindingId(tb, 'xss-proc', CRON_RULE)
    const { page, w, close } = await openConsole(browser, `${tb.url}/#/findings?status=&host=xss-proc`)
    t.teardown(close)
    await page.locator(`tr.row[data-id="${fileId}"]`).waitFor()
    t.equal(await page.evaluate(q => document.querySelectorAll(q).length, INJECTED), 0, 'the table made no element from the records')

    await page.locator(`tr.row[data-id="${procId}"]`).click()
    await page.locator('section.process li.proc-matched').waitFor()
    t.equal(await page.locator('li.proc-matched > .proc-line .proc-path').innerText(), exe, 'the executable path shows verbatim')
    t.equal(await page.locator('li.proc-matched > code.cmd').innerText(), cmd, 'the command line shows verbatim')
    t.equal(await page.locator('li.proc-matched .proc-user').innerText(), user, 'the user shows verbatim')
    t.equal(await page.locator('li.proc-ancestor > code.cmd').innerText(), parentCmd, 'the parent\'s command line shows verbatim')
    t.equal(await page.evaluate(q => document.querySelectorAll(q).length, INJECTED), 0, 'no element was made from a command line or path')
    await page.locator('details summary', { hasText: 'OCSF' }).click()
    t.match(await page.locator('pre.json').innerText(), '</script><script>', 'the raw JSON shows the markup as text')

    await page.goto(`${tb.url}/#/findings/${fileId}`)
    await page.locator('section.process .file-path').waitFor()
    t.equal(await page.locator('section.process .file-path').innerText(), filePath, 'the file name shows verbatim')
    t.equal(await page.locator('li.proc-matched > code.cmd').innerText(), fileCmd, 'the writing process\'s command line shows verbatim')
    t.equal(await page.evaluate(q => document.querySelectorAll(q).length, INJECTED), 0, 'no element was made from a file name')
    t.equal(await page.locator('main a', { hasText: /^x$/ }).count(), 0, 'no link was made from a file name')

    // long command lines wrap: nothing scrolls sideways on a phone
    await page.setViewportSize(PHONE)
    await page.goto(`${tb.url}/#/findings/${procId}`)
    await page.locator('section.process li.proc-matched').waitFor()
    t.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1), 'no sideways scrolling on a process finding at 390 px')

    t.same(w.dialogs, [], 'no dialog opened')
    t.same(w.errors, [], 'no console error (no CSP violation, no failed injected load)')
    t.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined, 'the sentinel was never set')
    t.notOk(w.requests.some(u => /\/x$|javascript:/.test(u)), 'no request for an injected resource')
  })

  t.test('keyboard: skip link, focus moves to the view, rows focusable with a visible focus', async t => {
    const { page, close } = await openConsole(browser, `${tb.url}/#/findings?status=`)
    t.teardown(close)
    await page.locator('tr.row').first().waitFor()
    await page.keyboard.press('Tab')
    t.equal(await page.evaluate(() => document.activeElement?.id), 'skip', 'the skip link is the first stop')
    const box = await page.locator('#skip').boundingBox()
    t.ok(box !== null && box.y >= 0, 'the skip link is visible when focused')
    await page.keyboard.press('Enter')
    t.equal(await page.evaluate(() => document.activeElement?.id), 'view-title', 'Enter skips to the view heading')
    // Tab on through the filters to the first row
    for (let i = 0; i < 12; i++) {
      await page.keyboard.press('Tab')
      if (await page.evaluate(() => document.activeElement?.tagName) === 'TR') break
    }
    t.equal(await page.evaluate(() => document.activeElement?.tagName), 'TR', 'rows are in the tab order')
    t.equal(await page.evaluate(() => getComputedStyle(document.activeElement as Element).outlineStyle), 'solid', 'focus is visible')
    await page.keyboard.press('ArrowDown')
    t.equal(await page.evaluate(() => (document.activeElement as HTMLElement).dataset.id !== undefined), true, 'arrow keys move between rows')
    await page.keyboard.press(' ')
    await page.waitForURL(/#\/findings\/.+/)
    await page.locator('.detail-head h1').waitFor()
    t.equal(await page.evaluate(() => document.activeElement?.id), 'view-title', 'opening a finding lands on its heading')
    await page.goBack()
    await page.locator('tr.row').first().waitFor()
    await until(async () => await page.evaluate(() => document.activeElement?.tagName === 'TR') ? true : undefined, 3000, 'focus back on the row')
    t.pass('going back puts focus on the row that was opened')
  })

  t.test('screenshots: findings, a finding, hosts, at 1280×800 and 390 px wide', async t => {
    // a host that lost records, and one that went quiet
    const client = connectCollector(tb.b.collector.address)
    const lossy = new AgentStream(client, 'lossy-host', { hostname: 'lossy.example', agentVersion: '0.1.0', drops: { kernel_reserve: 1200, slab_starvation: 3, spool_eviction: 35 } })
    const src = { hostId: 'lossy-host', hostname: 'lossy.example', agentVersion: '0.1.0', ip: '10.1.1.1' }
    const rec = makeNetworkActivity({ timeMs: Date.now(), activityId: 1, directionId: 1, protocolNum: 6, ipVersion: 4, srcIp: '203.0.113.9', srcPort: 50000, dstIp: '10.1.1.1', dstPort: 443, assignmentKnown: true }, makeMetadata(src), makeDevice(src))
    await lossy.send(packRecords([rec]), 1)
    await lossy.end()
    client.close()
    tb.b.store.recordHosts([{ hostId: 'quiet-host', hostname: 'quiet.example', agentVersion: '0.1.0', lastSeen: Date.now() - 15 * 60_000, records: 0, batches: 0, bytes: 0, recordsPerSec: 0, refusedBatches: 0, duplicateBatches: 0 }])
    await injectScan({ collector: tb.b.collector.address, hostId: 'shot-host', hostname: 'web-7.prod', source: '198.51.100.23', ports: 180, rate: 3000 })
    const id = await findingId(tb, 'shot-host')
    await tb.b.flush()

    const shots: string[] = []
    const { page, close } = await openConsole(browser, `${tb.url}/#/findings?status=`)
    t.teardown(close)
    await page.locator(`tr.row[data-id="${id}"]`).waitFor()
    await page.evaluate(() => { (document.activeElement as HTMLElement | null)?.blur() })
    shots.push(artifactPath('console-findings.png'))
    await page.screenshot({ path: shots[shots.length - 1] })
    await page.goto(`${tb.url}/#/findings/${id}`)
    await page.locator('svg.chart').first().waitFor()
    shots.push(artifactPath('console-finding.png'))
    await page.screenshot({ path: shots[shots.length - 1], fullPage: true })
    await page.goto(`${tb.url}/#/hosts`)
    await page.locator('table.hosts tr', { hasText: 'lossy.example' }).waitFor()
    t.match(await page.locator('table.hosts tr', { hasText: 'lossy.example' }).innerText(), /1,200\s+kernel ring full/)
    t.match(await page.locator('table.hosts tr', { hasText: 'quiet.example' }).innerText(), 'Stale')
    shots.push(artifactPath('console-hosts.png'))
    await page.screenshot({ path: shots[shots.length - 1], fullPage: true })

    await page.setViewportSize(PHONE)
    await page.goto(`${tb.url}/#/findings?status=`)
    await page.locator('tr.row').first().waitFor()
    await page.evaluate(() => { (document.activeElement as HTMLElement | null)?.blur() })
    t.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1), 'no sideways scrolling at 390 px')
    shots.push(artifactPath('console-findings-narrow.png'))
    await page.screenshot({ path: shots[shots.length - 1] })
    await page.goto(`${tb.url}/#/findings/${id}`)
    await page.locator('svg.chart').first().waitFor()
    t.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1), 'no sideways scrolling on a finding at 390 px')
    await page.evaluate(() => { (document.activeElement as HTMLElement | null)?.blur() })
    shots.push(artifactPath('console-finding-narrow.png'))
    await page.screenshot({ path: shots[shots.length - 1] })
    await page.locator('section.charts').scrollIntoViewIfNeeded()
    shots.push(artifactPath('console-finding-narrow-ports.png'))
    await page.screenshot({ path: shots[shots.length - 1] })
    for (const s of shots) t.ok(statSync(s).size > 10_000, `${s} written`)
  })

  t.test('token: a non-loopback console needs one; with it, requests without it get 401', async t => {
    await t.rejects(startBackend({ listen: '127.0.0.1:0', http: '0.0.0.0:0', db: ':memory:', workers: 1 }), { code: 'PICKET_ERR_CONSOLE_TOKEN', message: /without an access token.*--http-tokens-file/s })
    const cli = spawnPicket(['backend', '--listen', '127.0.0.1:0', '--console', '0.0.0.0:0', '--db', `${tb.dir}/refused.db`], { env: { PICKET_TSX: '1', PICKET_HTTP_TOKENS_FILE: '', CREDENTIALS_DIRECTORY: '' } })
    t.not(await cli.exited, 0, 'picket backend refuses to start')
    t.match(cli.stderr(), /would listen on 0\.0\.0\.0:0 without an access token/)
    t.match(cli.stderr(), 'PICKET_ERR_CONSOLE_TOKEN')

    const sec = await startTestBackend({ http: '0.0.0.0:0', httpAnonymousReads: false })
    t.teardown(sec.close)
    const token = sec.token
    const base = `http://127.0.0.1:${sec.b.http?.port ?? 0}`
    for (const path of ['/', '/api/findings', '/api/hosts', '/api/stream', '/metrics', '/assets/app.js']) {
      t.equal((await fetch(`${base}${path}`)).status, 401, `${path} without the token`)
    }
    const lb = await fetch(`${base}/healthz`)
    t.equal(lb.status, 200, '/healthz without the token: for load balancers…')
    t.same(Object.keys(await lb.json() as object).sort(), ['detail', 'status', 'time'], '…the status alone')
    t.equal((await fetch(`${base}/api/findings`, { headers: { authorization: 'Bearer tok-wrong' } })).status, 401, 'a wrong token')
    t.equal((await fetch(`${base}/api/findings`, { headers: { authorization: `Bearer ${token}` } })).status, 200, 'the token as a Bearer header')
    t.equal((await fetch(`${base}/healthz`, { headers: { authorization: `Bearer ${token}` } })).status, 200)
    const html = await (await fetch(`${base}/?access_token=${token}`)).text()
    t.match(html, `app.js?v=`)
    t.match(html, `&amp;access_token=${token}`, 'assets carry the token the page was opened with')

    // the page opened with ?access_token= works, live stream included
    const { page, w, close } = await openConsole(browser, `${base}/?access_token=${token}`)
    t.teardown(close)
    const statuses: number[] = []
    page.on('response', r => { statuses.push(r.status()) })
    await injectScan({ collector: sec.b.collector.address, hostId: 'token-host', ports: 20 })
    await page.locator('tr.row', { hasText: 'token-host' }).waitFor({ timeout: 10_000 })
    t.notOk(statuses.includes(401), 'no request of the page was refused')
    t.same(w.errors, [])
  })
}
