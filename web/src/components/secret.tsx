/**
 * Secrets shown once (a generated password, an API token, an enrolment
 * token and the line that uses it): a read-only field that selects itself
 * on focus, with a copy button where the browser allows it (a secure
 * context: HTTPS or localhost; elsewhere the hint says to select and copy).
 * Shared by the pages that make secrets, loaded with them, not at first.
 */
import type { ComponentChildren, JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { Dialog, announce } from './ui.js';

function canCopy(): boolean {
  return typeof navigator !== 'undefined' && navigator.clipboard !== undefined && window.isSecureContext;
}

/** One value to copy: its label, the field, and a Copy button (when the browser offers a clipboard). */
export function CopyField(props: { id: string; label: string; value: string; describedBy?: string; multiline?: boolean }): JSX.Element {
  const [copied, setCopied] = useState(false);
  useEffect(() => setCopied(false), [props.value]);
  const copy = async (): Promise<void> => {
    try {
      await navigator.clipboard.writeText(props.value);
      setCopied(true);
      announce(`${props.label}: copied`);
    } catch {
      setCopied(false);
    }
  };
  const select = (e: { currentTarget: HTMLInputElement | HTMLTextAreaElement }): void => e.currentTarget.select();
  return (
    <p class="copy-field">
      <label for={props.id}>{props.label}</label>
      <span class="copy-row">
        {props.multiline ? (
          <textarea id={props.id} class="secret mono" readOnly rows={3} value={props.value} onFocus={select} aria-describedby={props.describedBy} />
        ) : (
          <input id={props.id} class="secret mono" readOnly value={props.value} onFocus={select} aria-describedby={props.describedBy} />
        )}
        {canCopy() ? (
          <button type="button" onClick={() => void copy()}>
            {copied ? 'Copied' : 'Copy'}
            <span class="sr-only"> {props.label}</span>
          </button>
        ) : null}
      </span>
    </p>
  );
}

/** A dialog showing a secret once; `extra` goes below the secret (e.g. a command line that uses it). */
export function ShownOnce(props: { open: boolean; title: string; label: string; value: string; onClose: () => void; children: ComponentChildren; extra?: ComponentChildren }): JSX.Element {
  return (
    <Dialog open={props.open} title={props.title} onClose={props.onClose}>
      {props.children}
      <CopyField id="shown-once" label={props.label} value={props.value} describedBy="shown-once-hint" />
      <p id="shown-once-hint" class="hint">
        Copy it now: it is shown only this once{canCopy() ? '' : ' (select the field, then Ctrl+C or ⌘C)'}.
      </p>
      {props.extra}
      <div class="dialog-actions">
        <button type="button" class="primary" onClick={props.onClose}>
          Done
        </button>
      </div>
    </Dialog>
  );
}
