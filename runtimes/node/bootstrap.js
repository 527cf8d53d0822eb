'use strict';
/*
 * faasd runtime shim for node (SPEC §2): runs a Lambda-style handler.
 *
 * Started by the worker inside the sandbox as
 * `/usr/bin/node /var/runtime/node/bootstrap.js`; the code is at /var/task
 * and the handler is $FAAS_HANDLER ("file.export": file may be a path
 * inside the code, .js, .cjs or .mjs).  The shim loads the handler once,
 * then serves HTTP/1.1 on the unix socket $FAAS_LISTEN with node's own
 * http server: each request becomes an API Gateway REST proxy event, the
 * handler is called async-style (`async (event, context) => result`) or
 * callback-style (`(event, context, callback) => …`), and its result
 * becomes the response.  Only node's standard library is used.
 *
 * An uncaught error answers 502 with `X-Faas-Function-Error: Unhandled`
 * and the Lambda error object as the body; the instance lives on.  A
 * handler that cannot be loaded ends the shim before it listens, with the
 * reason on stderr: the gateway reports function_init_failed.
 */
const fs = require('fs');
const http = require('http');
const path = require('path');
const url = require('url');

function initFail(kind, message) {
	process.stderr.write(kind + ': ' + message + '\n', () => process.exit(1));
}

async function loadHandler(spec) {
	const dot = spec.lastIndexOf('.');
	if (dot <= 0 || dot === spec.length - 1)
		return initFail('Runtime.MalformedHandlerName',
			"Bad handler '" + spec + "': expected file.export");
	const base = spec.slice(0, dot), name = spec.slice(dot + 1);
	const root = '/var/task';
	let file = null;
	for (const ext of ['.js', '.cjs', '.mjs']) {
		const f = path.resolve(root, base + ext);
		if (f.startsWith(root + '/') && fs.existsSync(f)) {
			file = f;
			break;
		}
	}
	if (!file)
		return initFail('Runtime.ImportModuleError',
			"Error: Cannot find module '" + base + "' in /var/task");
	let mod;
	try {
		mod = file.endsWith('.mjs') ? await import(url.pathToFileURL(file).href)
			: require(file);
	} catch (e) {
		const kind = e instanceof SyntaxError ? 'Runtime.UserCodeSyntaxError'
			: 'Runtime.ImportModuleError';
		return initFail(kind, (e && e.stack) || String(e));
	}
	const fn = mod[name] !== undefined ? mod[name] : (mod.default || {})[name];
	if (typeof fn !== 'function')
		return initFail('Runtime.HandlerNotFound', base + '.' + name + ' is undefined or not exported');
	return fn;
}

function makeEvent(req, body) {
	const u = new URL(req.url, 'http://x');
	const p = decodeURIComponent(u.pathname) || '/';
	const headers = {}, multi = {};
	for (let i = 0; i < req.rawHeaders.length; i += 2) {
		const k = req.rawHeaders[i], v = req.rawHeaders[i + 1];
		if (k.toLowerCase().startsWith('x-faas-'))
			continue;
		headers[k] = v;
		(multi[k] = multi[k] || []).push(v);
	}
	let qs = null, mqs = null;
	if (u.search.length > 1) {
		qs = {};
		mqs = {};
		for (const [k, v] of u.searchParams) {
			qs[k] = v;
			(mqs[k] = mqs[k] || []).push(v);
		}
	}
	let text = null, b64 = false;
	if (body.length) {
		const s = body.toString('utf8');
		if (Buffer.from(s, 'utf8').equals(body))
			text = s;
		else {
			text = body.toString('base64');
			b64 = true;
		}
	}
	return {
		resource: '/{proxy+}',
		path: p,
		httpMethod: req.method,
		headers,
		multiValueHeaders: multi,
		queryStringParameters: qs,
		multiValueQueryStringParameters: mqs,
		pathParameters: p !== '/' ? { proxy: p.slice(1) } : null,
		stageVariables: null,
		requestContext: {
			resourcePath: '/{proxy+}',
			httpMethod: req.method,
			path: p,
			protocol: 'HTTP/1.1',
			stage: 'live',
			requestId: req.headers['x-faas-invocation-id'] || '',
			requestTimeEpoch: Date.now(),
			accountId: process.env.FAAS_TENANT || '',
			apiId: 'faasd',
			domainName: req.headers.host || '',
			identity: { sourceIp: req.headers['x-forwarded-for'] || '',
				userAgent: req.headers['user-agent'] || '' },
		},
		body: text,
		isBase64Encoded: b64,
	};
}

function makeContext(req) {
	const deadline = Number(req.headers['x-faas-deadline-ms']) ||
		Date.now() + 1000 * Number(process.env.FAAS_TIMEOUT_S || 30);
	const fn = process.env.FAAS_FUNCTION_NAME || '', ver = process.env.FAAS_FUNCTION_VERSION || '';
	return {
		awsRequestId: req.headers['x-faas-invocation-id'] || '',
		functionName: fn,
		functionVersion: ver,
		memoryLimitInMB: process.env.FAAS_MEMORY_MB || '128',
		invokedFunctionArn: 'arn:faasd:lambda:local:' + (process.env.FAAS_TENANT || '') +
			':function:' + fn + ':' + ver,
		logGroupName: '/faasd/' + (process.env.FAAS_TENANT || '') + '/' + fn,
		logStreamName: 'instance-' + process.pid,
		callbackWaitsForEmptyEventLoop: true,
		getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
	};
}

function send(res, status, headers, body) {
	const out = {};
	for (const [k, v] of headers) {
		const lk = k.toLowerCase();
		if (lk === 'content-length' || lk === 'transfer-encoding' || lk === 'connection')
			continue;
		if (out[k] === undefined)
			out[k] = v;
		else
			out[k] = [].concat(out[k], v);
	}
	out['Content-Length'] = body.length;
	try {
		res.writeHead(status, out);
	} catch (e) {
		return sendError(res, e);
	}
	res.end(body);
}

function sendResult(res, result) {
	if (result && typeof result === 'object' && !Array.isArray(result) && 'statusCode' in result) {
		const headers = [];
		for (const [k, v] of Object.entries(result.headers || {}))
			headers.push([k, String(v)]);
		for (const [k, vs] of Object.entries(result.multiValueHeaders || {}))
			for (const v of vs || [])
				headers.push([k, String(v)]);
		let body = result.body;
		if (body === undefined || body === null)
			body = Buffer.alloc(0);
		else if (result.isBase64Encoded)
			body = Buffer.from(String(body), 'base64');
		else if (Buffer.isBuffer(body))
			; /* as it is */
		else if (typeof body === 'string')
			body = Buffer.from(body, 'utf8');
		else
			body = Buffer.from(JSON.stringify(body), 'utf8');
		if (!headers.some(([k]) => k.toLowerCase() === 'content-type'))
			headers.push(['Content-Type', 'application/json']);
		return send(res, Number(result.statusCode) || 200, headers, body);
	}
	const text = result === undefined ? 'null' : JSON.stringify(result);
	send(res, 200, [['Content-Type', 'application/json']], Buffer.from(text, 'utf8'));
}

function errorObject(e) {
	if (e instanceof Error) {
		const lines = String(e.stack || '').split('\n').slice(1).map((l) => l.trim())
			.filter((l) => !l.includes('/var/runtime/'));
		return { errorType: e.name || 'Error', errorMessage: e.message, stackTrace: lines };
	}
	return { errorType: typeof e === 'string' ? 'string' : 'Error',
		errorMessage: typeof e === 'string' ? e : JSON.stringify(e), stackTrace: [] };
}

function sendError(res, e) {
	const err = errorObject(e);
	process.stderr.write('ERROR\t' + err.errorType + ': ' + err.errorMessage + '\n' +
		(e && e.stack ? e.stack + '\n' : ''));
	if (res.headersSent)
		return res.destroy();
	send(res, 502, [['Content-Type', 'application/json'], ['X-Faas-Function-Error', 'Unhandled']],
		Buffer.from(JSON.stringify(err), 'utf8'));
}

function invoke(handler, req, body, res) {
	let settled = false;
	const done = (err, result) => {
		if (settled)
			return;
		settled = true;
		if (err !== null && err !== undefined)
			sendError(res, err);
		else
			sendResult(res, result);
	};
	const context = makeContext(req);
	context.done = done;
	context.succeed = (r) => done(null, r);
	context.fail = (e) => done(e);
	let ret;
	try {
		ret = handler.length >= 3 ? handler(makeEvent(req, body), context, done)
			: handler(makeEvent(req, body), context);
	} catch (e) {
		return done(e);
	}
	if (ret && typeof ret.then === 'function')
		ret.then((r) => done(null, r), (e) => done(e === undefined ? new Error('rejected') : e));
	else if (handler.length < 3)
		done(null, ret);
}

async function main() {
	const listen = process.env.FAAS_LISTEN;
	if (!listen)
		return initFail('Runtime.InvalidEnvironment', 'FAAS_LISTEN is not set');
	process.chdir('/var/task');
	const handler = await loadHandler(process.env.FAAS_HANDLER || '');
	if (!handler)
		return;
	process.on('uncaughtException', (e) => {
		process.stderr.write('ERROR\tUncaught exception: ' + ((e && e.stack) || e) + '\n');
	});
	process.on('unhandledRejection', (e) => {
		process.stderr.write('ERROR\tUnhandled rejection: ' + ((e && e.stack) || e) + '\n');
	});
	const server = http.createServer((req, res) => {
		const parts = [];
		req.on('data', (c) => parts.push(c));
		req.on('end', () => invoke(handler, req, Buffer.concat(parts), res));
	});
	/* The gateway keeps connections for as long as the instance lives. */
	server.keepAliveTimeout = 0;
	server.headersTimeout = 0;
	server.requestTimeout = 0;
	try {
		fs.unlinkSync(listen);
	} catch (e) { /* not there */ }
	server.listen(listen);
}

main();
