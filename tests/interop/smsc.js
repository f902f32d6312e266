// A small SMSC built on node-smpp (https://www.npmjs.com/package/smpp), software we did not write,
// for the interoperability test of our SMPP client (tests/interop/test_node_smpp.py).
//
// Usage: node smsc.js SYSTEM_ID PASSWORD
// Listens on an ephemeral port on 127.0.0.1 and prints one JSON line per event to stdout; the
// first is {"event":"listening","port":N}. For every submit_sm it answers submit_sm_resp with a
// fresh hex message id, then sends a delivery receipt (deliver_sm, esm_class 0x04, the text form
// plus receipted_message_id/message_state TLVs) on the transceiver or receiver session of the same
// system_id. Right after a bind it sends the client an enquire_link and a data_sm (an MO message)
// and logs the responses. It answers enquire_link and unbind. Bad credentials get
// ESME_RINVPASWD (0x0E) and the connection is closed.
'use strict';
var smpp = require('smpp');

var systemId = process.argv[2] || 'interop';
var password = process.argv[3] || 'secret';
var nextId = 0x1000;
var receivers = [];  // sessions that can take deliver_sm

function log(obj) {
	process.stdout.write(JSON.stringify(obj) + '\n');
}

function pad(n) {
	return (n < 10 ? '0' : '') + n;
}

function smppDate(d) {  // YYMMDDhhmm, the 10-digit form of the receipt text
	return pad(d.getUTCFullYear() % 100) + pad(d.getUTCMonth() + 1) + pad(d.getUTCDate()) +
		pad(d.getUTCHours()) + pad(d.getUTCMinutes());
}

function sendReceipt(submit, messageId) {
	var target = receivers.find(function(s) { return !s.closed; });
	if (!target) {
		log({event: 'receipt_not_sent', message_id: messageId});
		return;
	}
	var now = smppDate(new Date());
	var text = 'id:' + messageId + ' sub:001 dlvrd:001 submit date:' + now + ' done date:' + now +
		' stat:DELIVRD err:000 text:';
	target.deliver_sm({
		source_addr: submit.destination_addr,
		destination_addr: submit.source_addr,
		esm_class: 0x04,
		short_message: {message: text},
		receipted_message_id: messageId,
		message_state: 2  // DELIVERED
	}, function(resp) {
		log({event: 'deliver_sm_resp', message_id: messageId, status: resp.command_status});
	});
}

function greet(session) {
	session.enquire_link({}, function(resp) {
		log({event: 'enquire_link_resp', status: resp.command_status});
	});
	session.data_sm({
		source_addr: '4915550001', destination_addr: '12345', data_coding: 0,
		message_payload: {message: 'hello from node-smpp'}
	}, function(resp) {
		log({event: 'data_sm_resp', status: resp.command_status});
	});
}

function onBind(session, pdu, canReceive) {
	log({event: pdu.command, system_id: pdu.system_id});
	if (pdu.system_id !== systemId || pdu.password !== password) {
		session.send(pdu.response({command_status: smpp.ESME_RINVPASWD}));
		session.close();
		return;
	}
	session.send(pdu.response({system_id: 'node-smpp'}));
	if (canReceive) {
		receivers.push(session);
		greet(session);
	}
}

var server = smpp.createServer(function(session) {
	session.closed = false;
	session.on('bind_transceiver', function(pdu) { onBind(session, pdu, true); });
	session.on('bind_receiver', function(pdu) { onBind(session, pdu, true); });
	session.on('bind_transmitter', function(pdu) { onBind(session, pdu, false); });
	session.on('submit_sm', function(pdu) {
		var messageId = (nextId++).toString(16);
		log({event: 'submit_sm', sequence: pdu.sequence_number, source_addr: pdu.source_addr,
			destination_addr: pdu.destination_addr, esm_class: pdu.esm_class,
			data_coding: pdu.data_coding, message_id: messageId});
		session.send(pdu.response({message_id: messageId}));
		sendReceipt(pdu, messageId);
	});
	session.on('enquire_link', function(pdu) {
		log({event: 'enquire_link'});
		session.send(pdu.response());
	});
	session.on('unbind', function(pdu) {
		log({event: 'unbind'});
		session.send(pdu.response());
		session.close();
	});
	session.on('close', function() {
		session.closed = true;
		log({event: 'close'});
	});
	session.on('error', function(err) {
		log({event: 'error', message: String(err)});
	});
});

server.listen(0, '127.0.0.1', function() {
	log({event: 'listening', port: server.address().port});
});

process.on('SIGTERM', function() {
	server.close();
	process.exit(0);
});
