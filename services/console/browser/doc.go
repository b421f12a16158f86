// Package browser holds the console's end-to-end tests: a real headless
// Chromium (Debian's package) driven with chromedp against the running test
// stack, checking what a person at the console would see, and saving
// screenshots under the stack's state directory (artifacts/).
package browser
