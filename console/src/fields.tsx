/**
 * Form fields that carry their own refusal beside them: the page's checks (an amount it cannot read)
 * and the API's userErrors, matched by their field path (`['input', 'name']` → the `name` field).
 * A refusal with no field of the form is shown under it.
 */
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { t } from './i18n.ts';
import { ErrorText, type UserErrorView, UserErrors } from './ui.tsx';

/** Refusals by form field name. */
export type FieldErrors = Partial<Record<string, string>>;

export interface FieldOutcome {
  fieldErrors?: FieldErrors;
  userErrors?: readonly UserErrorView[];
  error?: unknown;
  done?: string;
}

/** What a submit found: refusals by field (the page's own, or the API's), or what was done. */
export type Sent = { fieldErrors?: FieldErrors; userErrors?: readonly UserErrorView[]; done?: string };

/** The API's refusals split between the form's fields and the rest. */
function placed(userErrors: readonly UserErrorView[] | undefined, fields: readonly string[], own: FieldErrors = {}): FieldOutcome {
  const fieldErrors: FieldErrors = { ...own };
  const rest: UserErrorView[] = [];
  for (const e of userErrors ?? []) {
    const name = e.field?.[e.field.length - 1];
    if (name && fields.includes(name) && !fieldErrors[name]) fieldErrors[name] = `${e.message} (${e.code})`;
    else rest.push(e);
  }
  return { fieldErrors, userErrors: rest };
}

/** A form whose submit runs `send`; each refusal lands beside its field. */
export function useFieldForm(fields: readonly string[], send: (data: FormData) => Promise<Sent>, onDone: () => void = () => {}, resetOnDone = false) {
  const [outcome, setOutcome] = useState<FieldOutcome>({});
  const submit = async (e: Event) => {
    e.preventDefault();
    setOutcome({});
    const form = e.currentTarget as HTMLFormElement;
    try {
      const r = await send(new FormData(form));
      setOutcome(r.done ? { done: r.done } : placed(r.userErrors, fields, r.fieldErrors));
      if (r.done && resetOnDone) form.reset();
      if (r.done) onDone();
    } catch (error) {
      setOutcome({ error });
    }
  };
  return { outcome, submit };
}

type InputProps = Omit<JSX.InputHTMLAttributes<HTMLInputElement>, 'id' | 'name'>;

/** A labelled input; its refusal, if any, beside it and named by it (aria-describedby). */
export function Field({ id, name, label, outcome, ...input }: { id: string; name: string; label: string; outcome: FieldOutcome } & InputProps) {
  const error = outcome.fieldErrors?.[name];
  return (
    <label>
      {label}
      <input id={id} name={name} aria-invalid={error ? 'true' : undefined} aria-describedby={error ? `${id}-error` : undefined} {...input} />
      {error ? (
        <span class="field-error" id={`${id}-error`} role="alert">
          {error}
        </span>
      ) : null}
    </label>
  );
}

/** Under the form: refusals that belong to no field, errors, or what was done. */
export function FormOutcome({ outcome, id }: { outcome: FieldOutcome; id: string }) {
  return (
    <>
      <UserErrors errors={outcome.userErrors} />
      <ErrorText error={outcome.error} />
      {outcome.done ? (
        <p class="ok" role="status" id={id}>
          {outcome.done}
        </p>
      ) : null}
    </>
  );
}

/** An edit form's buttons: Save submits, Cancel closes the form. */
export function SaveOrCancel({ id, onClose }: { id: string; onClose(): void }) {
  return (
    <>
      <button type="submit" id={id}>
        {t('save')}
      </button>
      <button type="button" class="link" onClick={onClose}>
        {t('cancel')}
      </button>
    </>
  );
}

/** Keyboard users land in the form Edit opened: its first field takes the focus. */
export function useFocusOnOpen(id: string) {
  useEffect(() => document.getElementById(id)?.focus(), [id]);
}
