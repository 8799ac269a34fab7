<?php
// Serve this page's visitors through Switchyard's Click API (v3).
// Set SWITCHYARD_TOKEN (the campaign's Click API token) and optionally SWITCHYARD_URL.

$tracker = getenv('SWITCHYARD_URL') ?: 'http://127.0.0.1:8080';
$token = getenv('SWITCHYARD_TOKEN');
$cookie = 'sy_uniqueness';

$form = array_merge($_GET, [
    'token' => $token,
    'ip' => $_SERVER['REMOTE_ADDR'] ?? '',
    'user_agent' => $_SERVER['HTTP_USER_AGENT'] ?? '',
    'referrer' => $_SERVER['HTTP_REFERER'] ?? '',
    'language' => substr($_SERVER['HTTP_ACCEPT_LANGUAGE'] ?? '', 0, 2),
    'original_host' => $_SERVER['HTTP_HOST'] ?? '',
    'uri' => (isset($_SERVER['HTTPS']) ? 'https://' : 'http://') . ($_SERVER['HTTP_HOST'] ?? '') . ($_SERVER['REQUEST_URI'] ?? '/'),
    'uniqueness_cookie' => $_COOKIE[$cookie] ?? '',
    'info' => 1,
]);

$context = stream_context_create(['http' => [
    'method' => 'POST',
    'header' => 'Content-Type: application/x-www-form-urlencoded',
    'content' => http_build_query($form),
    'timeout' => 5,
]]);
$answer = json_decode(file_get_contents("$tracker/click_api/v3", false, $context), true);

http_response_code($answer['status']);
foreach ($answer['headers'] as $line) {
    header($line);
}
header('Content-Type: ' . $answer['contentType']);
setcookie($cookie, $answer['uniqueness_cookie'], time() + 3600 * ($answer['cookies_ttl'] ?? 24), '/');
$body = $answer['body'] ?? '';
$binary = preg_match('#^(image/|application/pdf|application/octet-stream)#', $answer['contentType']);
echo $binary ? base64_decode($body) : $body;
