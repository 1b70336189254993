/** Placeholder until this page is written (issue 12). */
import type { JSX } from 'preact';
import { Page } from '../components/ui.js';

export default function P(): JSX.Element {
  return <Page title="leases">Not written yet.</Page>;
}
