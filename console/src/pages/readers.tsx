/**
 * Card company: its readers (keyset pages) with their certificate serials; register one from the
 * three CSRs its keys made (national: access; city: signing; encryption), suspend, re-activate, and
 * revoke for good (its certificates go on the CRLs).
 */
import { ActivateReaderDocument, CardCompanyDocument, ReadersDocument, RegisterReaderDocument, RevokeReaderDocument, SuspendReaderDocument } from '@onecard/sdk/browser';
import { useState } from 'preact/hooks';
import { formatTime } from '../format.ts';
import { t } from '../i18n.ts';
import { apiClient } from '../session.ts';
import { PagedTable, usePaged } from '../table.tsx';
import { ErrorText, Section, Status, type UserErrorView, UserErrors, useLoad } from '../ui.tsx';

export function ReadersPage({ cardCompanyId }: { cardCompanyId: string }) {
  const company = useLoad(() => apiClient().execute(CardCompanyDocument, { id: cardCompanyId }), [cardCompanyId]);
  const [changed, setChanged] = useState(0);
  const paged = usePaged((after) => apiClient().execute(ReadersDocument, { first: 20, after }), null, [changed]);
  const [action, setAction] = useState<{ userErrors?: readonly UserErrorView[]; error?: unknown }>({});
  const city = company.data?.cardCompany?.city;

  const changeStatus = async (kind: 'suspend' | 'activate' | 'revoke', reader: { id: string; serial: string }) => {
    if (kind === 'revoke' && !confirm(t('confirmRevoke', { serial: reader.serial }))) return;
    setAction({});
    try {
      const input = { reader: reader.id };
      const r =
        kind === 'suspend'
          ? await apiClient().mutate(SuspendReaderDocument, { input })
          : kind === 'activate'
            ? await apiClient().mutate(ActivateReaderDocument, { input })
            : await apiClient().mutate(RevokeReaderDocument, { input });
      if (!r.ok) setAction({ userErrors: r.userErrors });
      setChanged((n) => n + 1);
    } catch (error) {
      setAction({ error });
    }
  };

  return (
    <>
      {city ? <RegisterForm cityId={city.id} ownerId={cardCompanyId} onRegistered={() => setChanged((n) => n + 1)} /> : <ErrorText error={company.error} />}
      <Section title={t('readers')} id="readers-title">
        <UserErrors errors={action.userErrors} />
        <ErrorText error={action.error} />
        <PagedTable
          id="readers"
          paged={paged}
          connection={paged.list.data?.readers}
          rowKey={(r) => r.id}
          rowAttrs={(r) => ({ 'data-serial': r.serial })}
          columns={[
            { header: t('serial'), rowHeader: true, cell: (r) => r.serial },
            { header: t('model'), cell: (r) => r.model },
            { header: t('status'), cell: (r) => <Status value={r.status} /> },
            {
              header: t('certificates'),
              cell: (r) => (
                <>
                  <code>{r.cityCertificateSerial}</code>
                  {r.nationalCertificateSerial ? (
                    <>
                      {' '}
                      / <code>{r.nationalCertificateSerial}</code>
                    </>
                  ) : null}
                </>
              ),
            },
            { header: t('created'), cell: (r) => formatTime(r.createdAt, city?.timeZone) },
            {
              header: t('actions'),
              cell: (r) => (
                <span class="actions">
                  {r.status === 'ACTIVE' ? (
                    <button type="button" onClick={() => changeStatus('suspend', r)} aria-label={`${t('suspend')} ${r.serial}`}>
                      {t('suspend')}
                    </button>
                  ) : null}
                  {r.status === 'SUSPENDED' ? (
                    <button type="button" onClick={() => changeStatus('activate', r)} aria-label={`${t('activate')} ${r.serial}`}>
                      {t('activate')}
                    </button>
                  ) : null}
                  {r.status !== 'REVOKED' ? (
                    <button type="button" class="danger" onClick={() => changeStatus('revoke', r)} aria-label={`${t('revoke')} ${r.serial}`}>
                      {t('revoke')}
                    </button>
                  ) : null}
                </span>
              ),
            },
          ]}
        />
      </Section>
    </>
  );
}

function RegisterForm({ cityId, ownerId, onRegistered }: { cityId: string; ownerId: string; onRegistered(): void }) {
  const empty = { serial: '', model: '', nationalCsr: '', cityCsr: '', encryptionCsr: '' };
  const [form, setForm] = useState(empty);
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<{ done?: string; userErrors?: readonly UserErrorView[]; error?: unknown }>({});
  const field = (name: keyof typeof empty) => ({
    id: `reader-${name}`,
    value: form[name],
    onInput: (e: Event) => setForm({ ...form, [name]: (e.target as HTMLInputElement).value }),
  });
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setResult({});
    try {
      const r = await apiClient().mutate(RegisterReaderDocument, { input: { ...form, serial: form.serial.trim(), model: form.model.trim(), city: cityId, owner: ownerId } });
      if (!r.ok) {
        setResult({ userErrors: r.userErrors });
        return;
      }
      const reader = r.data.registerReader.reader!;
      setResult({ done: t('registered', { serial: reader.serial, status: reader.status }) });
      setForm(empty);
      onRegistered();
    } catch (error) {
      setResult({ error });
    } finally {
      setBusy(false);
    }
  };
  return (
    <Section title={t('registerReader')} id="register-title">
      <form class="card-form" onSubmit={submit}>
        <div class="row">
          <label>
            {t('serial')}
            <input {...field('serial')} required />
          </label>
          <label>
            {t('model')}
            <input {...field('model')} required />
          </label>
        </div>
        <label>
          {t('nationalCsr')}
          <textarea {...field('nationalCsr')} rows={4} required spellcheck={false} />
        </label>
        <label>
          {t('cityCsr')}
          <textarea {...field('cityCsr')} rows={4} required spellcheck={false} />
        </label>
        <label>
          {t('encryptionCsr')}
          <textarea {...field('encryptionCsr')} rows={4} required spellcheck={false} />
        </label>
        <button type="submit" id="reader-register" disabled={busy}>
          {t('register')}
        </button>
      </form>
      <UserErrors errors={result.userErrors} />
      <ErrorText error={result.error} />
      {result.done ? (
        <p class="ok" role="status" id="reader-registered">
          {result.done}
        </p>
      ) : null}
    </Section>
  );
}
