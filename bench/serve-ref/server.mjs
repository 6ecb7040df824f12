// The upload-token guide's token endpoint as the guide writes it, for bench/serve.sh: Express, a JWT bearer
// checked with jsonwebtoken (the guide's "Authorization: Bearer {{jwt_auth_token}}" and
// JWT_SECRET), and an ImageKit V2 upload token signed with jsonwebtoken, with ImageKit's Upload API V2 guide's string
// values. Prints {"listen":"127.0.0.1:PORT"} once listening.
//
// With REF_KEYOBJECT=1 the secrets are passed as KeyObjects instead of the guide's strings: given
// a string, jsonwebtoken 9 first tries to parse it as a PEM private key (createPrivateKey, about
// 0.5 ms with OpenSSL 3) before treating it as an HMAC secret. That variant is the fairer
// baseline; the bench reports both.
import { createSecretKey } from 'node:crypto';
import express from 'express';
import jwt from 'jsonwebtoken';

const env = (name) => {
  const value = process.env[name];
  if (!value) {
    console.error(`error: set ${name}`);
    process.exit(2);
  }
  return value;
};
const keyObjects = process.env.REF_KEYOBJECT === '1';
const secret = (text) => (keyObjects ? createSecretKey(Buffer.from(text)) : text);
const PRIVATE_KEY = secret(env('Image_Kit_Private_Key_Owner'));
const PUBLIC_KEY = env('Image_Kit_Public_Key_Owner');
const URL_ENDPOINT = env('Image_Kit_URL');
const JWT_SECRET = secret(env('JWT_SECRET'));

const app = express();
app.disable('x-powered-by');

// The guide's auth middleware: a valid JWT bearer token, or 401.
function requireUser(req, res, next) {
  const header = req.headers.authorization ?? '';
  const token = header.startsWith('Bearer ') ? header.slice(7) : null;
  try {
    req.user = jwt.verify(token, JWT_SECRET);
    return next();
  } catch {
    return res.status(401).json({ status: 401, success: false, message: 'Unauthorized' });
  }
}

app.get('/api/media/get-upload-token', requireUser, (req, res) => {
  try {
    const uploadPayload = { useUniqueFileName: 'true', tags: 'chat,media', folder: '/uploads/chat' };
    if (typeof req.query.fileName === 'string') uploadPayload.fileName = req.query.fileName;
    const iat = Math.floor(Date.now() / 1000);
    const exp = iat + 3600;
    const token = jwt.sign({ ...uploadPayload, iat, exp }, PRIVATE_KEY, {
      algorithm: 'HS256',
      header: { alg: 'HS256', typ: 'JWT', kid: PUBLIC_KEY },
    });
    res.status(200).json({
      status: 200,
      success: true,
      message: 'Upload token generated successfully',
      data: {
        token,
        expire: exp,
        publicKey: PUBLIC_KEY,
        urlEndpoint: URL_ENDPOINT,
        uploadUrl: 'https://upload.imagekit.io/api/v2/files/upload',
      },
    });
  } catch (err) {
    res.status(500).json({ status: 500, success: false, message: err.message });
  }
});

const server = app.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const { address, port } = server.address();
  console.log(JSON.stringify({ listen: `${address}:${port}` }));
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
