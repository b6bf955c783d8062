/** Headless Chromium (Debian's, driven by playwright-core) on the Node-RED editor, for the editor's browser tests. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { projectRoot } from './node-red-process';
import type { NodeRedProcess } from './node-red-process';

const CHROMIUM = '/usr/bin/chromium';
/** Screenshots of the editor tests go here (git-ignored). */
const ARTIFACTS = path.join(projectRoot, 'test-artifacts');

/* eslint-disable @typescript-eslint/no-explicit-any -- page.evaluate bodies run in the editor, where RED is untyped */
declare const RED: any;

export interface Chromium {
  context: BrowserContext;
  close(): Promise<void>;
}

/** For a `before` hook: skips the suite, saying why, where Chromium is not installed. */
export function skipWithoutChromium(suite: Mocha.Context): void {
  if (fs.existsSync(CHROMIUM)) return;
  console.log(`      (skipped: ${CHROMIUM} is absent; .ci/run installs Debian's chromium)`);
  suite.skip();
}

/**
 * `locale`: the browser's language (navigator.language and Accept-Language), from which Node-RED's editor picks its
 * own: `de-DE` gives the German editor.
 */
export async function launchChromium(options: { locale?: string } = {}): Promise<Chromium> {
  const { chromium } = require('playwright-core') as typeof import('playwright-core');
  const profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lwm2m-chromium-'));
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 900 },
    ...(options.locale ? { locale: options.locale } : {}),
    args: [
      ...(options.locale ? [`--lang=${options.locale}`] : []),
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  return {
    context,
    close: async () => {
      await context.close().catch(() => undefined);
      fs.rmSync(profileDir, { recursive: true, force: true });
    },
  };
}

/** Opens the editor, logs in as admin through adminAuth's dialog, and waits for the flows (tab `workspace`). */
export async function openEditor(page: Page, red: NodeRedProcess, workspace: string): Promise<void> {
  await page.goto(red.url);
  await page.locator('#node-dialog-login-username').fill('admin');
  await page.locator('#node-dialog-login-password').fill('admin');
  await page.locator('#node-dialog-login-submit').click();
  await page.waitForFunction(
    (tab) => typeof RED !== 'undefined' && RED.nodes?.getType?.('lwm2m-read') && RED.nodes.workspace(tab),
    workspace,
    { timeout: 30000 },
  );
}

export async function screenshot(page: Page, name: string): Promise<void> {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, name) }).catch(() => undefined);
}
