/**
 * Operator: the PKI (docs/pki.md): the CA hierarchy with each CA's certificate and CRL, and a
 * certificate's status by its serial (what a relying party's OCSP-like check answers).
 */
import { CertificateAuthoritiesDocument, type CertificateStatusQuery, CertificateStatusDocument } from '@onecard/sdk/browser';
import { useState } from 'preact/hooks';
import { formatTime } from '../format.ts';
import { t } from '../i18n.ts';
import { apiClient } from '../session.ts';
import { Table } from '../table.tsx';
import { ErrorText, Section, Status, useLoad } from '../ui.tsx';

/** RFC 5280 CRLReason codes, named as the RFC names them. */
const REASONS: Record<number, string> = { 0: 'unspecified', 1: 'keyCompromise', 2: 'cACompromise', 3: 'affiliationChanged', 4: 'superseded', 5: 'cessationOfOperation', 6: 'certificateHold', 8: 'removeFromCRL', 9: 'privilegeWithdrawn', 10: 'aACompromise' };

export function PkiPage() {
  const cas = useLoad(() => apiClient().execute(CertificateAuthoritiesDocument), []);
  return (
    <>
      <Section title={t('certificateAuthorities')} id="cas-title">
        <ErrorText error={cas.error} />
        {cas.data ? (
          <Table
            id="cas"
            rows={cas.data.certificateAuthorities}
            rowKey={(ca) => ca.id}
            rowAttrs={(ca) => ({ 'data-ca': ca.id })}
            columns={[
              { header: t('name'), rowHeader: true, cell: (ca) => ca.name },
              { header: t('kind'), cell: (ca) => ca.kind },
              { header: 'ID', cell: (ca) => <code>{ca.id}</code> },
              {
                header: t('certificate'),
                cell: (ca) => (
                  <a href={`/pki/${encodeURIComponent(ca.id)}.pem`} download aria-label={`PEM ${ca.name}`}>
                    PEM
                  </a>
                ),
              },
              {
                header: 'CRL',
                cell: (ca) =>
                  ca.crlUrl ? (
                    <a href={ca.crlUrl} class="crl" aria-label={`CRL ${ca.name}`}>
                      CRL
                    </a>
                  ) : (
                    t('offlineRoot')
                  ),
              },
            ]}
          />
        ) : null}
      </Section>
      <CertificateLookup />
    </>
  );
}

function CertificateLookup() {
  const [result, setResult] = useState<{ status?: CertificateStatusQuery['certificateStatus']; error?: unknown }>({});
  const submit = async (e: Event) => {
    e.preventDefault();
    setResult({});
    const serial = String(new FormData(e.currentTarget as HTMLFormElement).get('serial') ?? '')
      .trim()
      .toLowerCase()
      .replace(/[\s:]/g, '');
    try {
      setResult({ status: (await apiClient().execute(CertificateStatusDocument, { serial })).certificateStatus });
    } catch (error) {
      setResult({ error });
    }
  };
  const s = result.status;
  return (
    <Section title={t('certificateStatus')} id="certificate-status-title">
      <form class="filters" onSubmit={submit}>
        <label>
          {t('serialHex')}
          <input id="certificate-serial" name="serial" required spellcheck={false} autoComplete="off" />
        </label>
        <button type="submit" id="certificate-check">
          {t('check')}
        </button>
      </form>
      <ErrorText error={result.error} />
      {s ? (
        <dl class="facts" id="certificate-status" data-status={s.status}>
          <dt>{t('serialHex')}</dt>
          <dd>
            <code>{s.serial}</code>
          </dd>
          <dt>{t('status')}</dt>
          <dd>
            <Status value={s.status} />
          </dd>
          <dt>{t('issuer')}</dt>
          <dd>{s.issuer ?? '—'}</dd>
          <dt>{t('notAfter')}</dt>
          <dd>{formatTime(s.notAfter)}</dd>
          {s.status === 'REVOKED' ? (
            <>
              <dt>{t('revokedAt')}</dt>
              <dd>{formatTime(s.revokedAt)}</dd>
              <dt>{t('reason')}</dt>
              <dd>{s.revocationReason == null ? '—' : `${REASONS[s.revocationReason] ?? ''} (${s.revocationReason})`}</dd>
            </>
          ) : null}
        </dl>
      ) : null}
    </Section>
  );
}
