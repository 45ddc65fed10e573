/**
 * The console's words in English and Chinese. One table, keyed by a short name; a page asks `t('refund')`.
 * The language is the user's choice (kept in localStorage), else the browser's.
 */
import { signal } from './signal.ts';

export type Lang = 'en' | 'zh';

const WORDS = {
  appTitle: ['OneCard console', '一卡通开放平台控制台'],
  signInTitle: ['Sign in', '登录'],
  signInLead: ['Choose your organisation; you sign in with your user name on OneCard’s sign-in page.', '请选择您的机构，然后在一卡通登录页面用您的用户名登录。'],
  signInAs: ['Sign in to {name}', '登录 {name}'],
  signOut: ['Sign out', '退出'],
  noSignInClients: ['No organisation has a console sign-in yet. The operator registers one per organisation.', '尚无机构开通控制台登录，请联系平台运营方。'],
  signInFailed: ['Sign-in failed: {reason}', '登录失败：{reason}'],
  language: ['中文', 'English'],
  kind_MERCHANT: ['Merchant', '商户'],
  kind_BILLER: ['Biller', '缴费单位'],
  kind_ISSUER: ['Card company', '通卡公司'],
  kind_OPERATOR: ['Operator', '平台运营方'],
  loading: ['Loading…', '加载中…'],
  nextPage: ['Next page', '下一页'],
  firstPage: ['First page', '第一页'],
  none: ['Nothing here yet.', '暂无数据。'],
  // payments
  payments: ['Payments', '支付'],
  status: ['Status', '状态'],
  amount: ['Amount', '金额'],
  refunded: ['Refunded', '已退款'],
  remaining: ['Refundable', '可退金额'],
  order: ['Order', '订单号'],
  created: ['Created', '创建时间'],
  allStatuses: ['All statuses', '全部状态'],
  filter: ['Filter', '筛选'],
  details: ['Details', '详情'],
  back: ['Back', '返回'],
  payment: ['Payment', '支付'],
  refunds: ['Refunds', '退款'],
  ledgerEntries: ['Ledger entries', '账务分录'],
  description: ['Description', '摘要'],
  posted: ['Posted', '记账时间'],
  refund: ['Refund', '退款'],
  refundAmount: ['Amount to refund ({currency})', '退款金额（{currency}）'],
  refundAmountHint: ['Leave empty to refund all that remains.', '留空则退还全部剩余金额。'],
  reason: ['Reason', '原因'],
  refundDone: ['Refunded {amount}. {remaining} can still be refunded.', '已退款 {amount}，剩余可退 {remaining}。'],
  badAmount: ['Write the amount as 12.50 (at most {digits} decimals).', '请按 12.50 的格式填写金额（最多 {digits} 位小数）。'],
  // webhooks
  webhooks: ['Webhooks', '事件通知'],
  webhookEndpoints: ['Webhook endpoints', '通知地址'],
  newEndpoint: ['A new webhook endpoint', '新增通知地址'],
  eventTypes: ['Event types', '事件类型'],
  eventTypesHint: ['Separated by spaces or commas; * for every type you may receive.', '以空格或逗号分隔；* 表示全部可接收的类型。'],
  create: ['Create', '创建'],
  secretOnce: ['The signing secret, shown this once: keep it to verify deliveries.', '签名密钥仅显示这一次，请妥善保存以校验通知。'],
  deliveries: ['Deliveries', '投递记录'],
  event: ['Event', '事件'],
  attempts: ['Attempts', '尝试次数'],
  replay: ['Replay', '重发'],
  replayed: ['Replayed: a new delivery is queued.', '已重发：新的投递已排队。'],
  // bills
  bills: ['Bills', '账单'],
  importCsv: ['Import a CSV file', '导入 CSV 文件'],
  csvFile: ['CSV file', 'CSV 文件'],
  csvText: ['or paste its text', '或粘贴文件内容'],
  fileName: ['File name', '文件名'],
  import: ['Import', '导入'],
  importReport: ['Import report: {accepted} of {rows} rows accepted, {refused} refused.', '导入结果：共 {rows} 行，接受 {accepted} 行，拒绝 {refused} 行。'],
  nothingImported: ['Nothing was imported: fix the rows below and import the file again.', '未导入任何账单：请修正以下各行后重新导入。'],
  row: ['Row', '行'],
  column: ['Column', '列'],
  problem: ['Problem', '问题'],
  account: ['Account', '户号'],
  period: ['Period', '账期'],
  amountDue: ['Amount due', '应缴金额'],
  dueDate: ['Due', '缴费截止'],
  publishBill: ['Publish a bill', '发布账单'],
  publish: ['Publish', '发布'],
  amountDueIn: ['Amount due ({currency})', '应缴金额（{currency}）'],
  amountPaid: ['Paid', '已缴金额'],
  billPublished: ['Bill {reference} published.', '账单 {reference} 已发布。'],
  amend: ['Amend', '修改'],
  amendBill: ['Amend bill {reference}', '修改账单 {reference}'],
  withdraw: ['Withdraw', '撤回'],
  confirmWithdraw: ['Withdraw bill {reference}? It can no longer be paid.', '确定撤回账单 {reference}？撤回后将无法缴费。'],
  billWithdrawn: ['Bill {reference} withdrawn.', '账单 {reference} 已撤回。'],
  // cards
  cards: ['Cards', '卡片'],
  cardNumber: ['Card number', '卡号'],
  search: ['Search', '查询'],
  noSuchCard: ['No card of yours has the number {number}.', '未找到卡号为 {number} 的本公司卡片。'],
  purse: ['Purse', '钱包余额'],
  pendingLoad: ['Waiting to be loaded', '待圈存金额'],
  validity: ['Valid', '有效期'],
  block: ['Block', '锁卡'],
  unblock: ['Unblock', '解锁'],
  reportLost: ['Report lost', '挂失'],
  history: ['History', '交易记录'],
  balanceAfter: ['Balance after', '交易后余额'],
  blacklist: ['Blacklist', '黑名单'],
  blacklistVersion: ['The blacklist is at version {version}: each change to your cards’ entries, oldest first.', '黑名单当前版本 {version}：本公司卡片的每次变更，按时间先后排列。'],
  version: ['Version', '版本'],
  change: ['Change', '变更'],
  when: ['When', '时间'],
  // readers
  readers: ['Readers', '读写器'],
  registerReader: ['Register a reader from its CSRs', '用证书请求注册读写器'],
  serial: ['Serial', '序列号'],
  model: ['Model', '型号'],
  owner: ['Owner', '所有者'],
  city: ['City', '城市'],
  nationalCsr: ['National CSR (PEM)', '国家证书请求（PEM）'],
  cityCsr: ['City CSR (PEM)', '城市证书请求（PEM）'],
  encryptionCsr: ['Encryption CSR (PEM)', '加密证书请求（PEM）'],
  register: ['Register', '注册'],
  registered: ['Reader {serial} registered: {status}.', '读写器 {serial} 已注册：{status}。'],
  suspend: ['Suspend', '暂停'],
  activate: ['Activate', '启用'],
  revoke: ['Revoke', '吊销'],
  confirmRevoke: ['Revoke reader {serial} for good? Its certificates go on the CRLs.', '确定永久吊销读写器 {serial}？其证书将列入吊销列表。'],
  certificates: ['Certificates', '证书'],
  // settlement
  settlement: ['Settlement', '清算'],
  windows: ['Settlement windows', '清算窗口'],
  businessDay: ['Business day', '营业日'],
  close: ['Close', '关闭'],
  clear: ['Clear', '清分'],
  reconcile: ['Reconcile with the gateway', '与支付网关对账'],
  reconciled: ['Reconciled: {matched} matched, {differences} differences ({open} open).', '对账完成：匹配 {matched} 笔，差异 {differences} 笔（未处理 {open} 笔）。'],
  differences: ['Reconciliation differences', '对账差异'],
  kind: ['Kind', '类型'],
  ours: ['Ours', '我方'],
  theirs: ['Gateway', '网关'],
  reference: ['Reference', '参考号'],
  note: ['Note', '备注'],
  resolve: ['Resolve', '处理'],
  showDifferences: ['Differences', '差异'],
  actions: ['Actions', '操作'],
  error: ['Error', '错误'],
  cutoff: ['Cut-off or closed', '截止/关闭时间'],
  // biller reconciliation
  reconciliation: ['Daily reconciliation', '每日对账'],
  paymentsCount: ['Payments', '缴费笔数'],
  total: ['Total', '合计'],
  ledgerTotal: ['Ledger total', '账务合计'],
  agrees: ['agrees', '一致'],
  disagrees: ['does not agree', '不一致'],
  byHour: ['Paid by hour (city time)', '按小时缴费金额（当地时间）'],
  downloadCsv: ['Download the day’s CSV file', '下载当日对账 CSV 文件'],
  receipt: ['Receipt', '收据号'],
  paidAt: ['Paid', '缴费时间'],
  // merchant settlement statements
  statements: ['Settlement statements', '结算单'],
  from: ['From', '起始日'],
  to: ['To', '截止日'],
  sales: ['Sales', '交易笔数'],
  gross: ['Gross', '交易金额'],
  fees: ['Fees', '手续费'],
  net: ['Net', '净额'],
  carriedIn: ['Carried in', '上期结转'],
  payout: ['Payout', '结算付款'],
  chart: ['Chart', '图表'],
  showChart: ['Chart', '查看图表'],
  volumeByHour: ['Transactions by hour and channel', '按小时和渠道的交易'],
  volumeByHourCaption: ['Amounts by hour (city time), by channel', '按小时（当地时间）和渠道统计的金额'],
  channel: ['Channel', '渠道'],
  count: ['Count', '笔数'],
  downloadStatementsCsv: ['Download the period’s CSV file', '下载本期结算单 CSV 文件'],
  // ledger
  ledger: ['Ledger', '账务'],
  ledgerCheck: ['Ledger check', '账务检查'],
  runLedgerCheck: ['Run the ledger check', '运行账务检查'],
  ledgerBalances: ['The ledger balances: no problem found.', '账务平衡：未发现问题。'],
  ledgerProblems: ['{count} problems found.', '发现 {count} 个问题。'],
  rule: ['Rule', '规则'],
  subject: ['Subject', '对象'],
} as const satisfies Record<string, readonly [string, string]>;

export type WordKey = keyof typeof WORDS;

const stored = typeof localStorage === 'undefined' ? null : localStorage.getItem('onecard-console-lang');
export const lang = signal<Lang>(stored === 'zh' || stored === 'en' ? stored : typeof navigator !== 'undefined' && navigator.language.startsWith('zh') ? 'zh' : 'en');

export function setLang(l: Lang): void {
  localStorage.setItem('onecard-console-lang', l);
  document.documentElement.lang = l === 'zh' ? 'zh-CN' : 'en';
  lang.set(l);
}

/** The word in the current language, with `{name}` placeholders filled in. */
export function t(key: WordKey, values: Record<string, string | number> = {}): string {
  const text = WORDS[key][lang.get() === 'zh' ? 1 : 0];
  return text.replace(/\{(\w+)\}/g, (_, name: string) => String(values[name] ?? `{${name}}`));
}

/** The locale Intl formats with. */
export const locale = () => (lang.get() === 'zh' ? 'zh-CN' : 'en-GB');
