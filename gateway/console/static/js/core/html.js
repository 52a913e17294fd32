// Preact with htm: components are written as tagged templates that build DOM nodes,
// never HTML strings (the CSP requires Trusted Types for script sinks).
import { h, render } from "../../vendor/preact.mjs";
import { useState, useEffect, useRef, useMemo, useCallback } from "../../vendor/preact-hooks.mjs";
import htm from "../../vendor/htm.mjs";

export const html = htm.bind(h);
export { render, useState, useEffect, useRef, useMemo, useCallback };
