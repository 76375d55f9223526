Dva mladí bílí muži jsou venku poblíž mnoha keřů.
Několik mužů v ochranných přilbách obsluhují velký kladkový systém.
Malá dívka leze do dřevěného hračkového domu.
Muž v modrém tričku stojí na žebříku a myje okno.
Dva muži připravují u sporáku jídlo.
Muž v zeleném drží kytaru zatímco další muž pozoruje jeho košili.
Muž se směje na vycpaného lva.
Modní dívka mluví do svého mobilního telefonu zatímco klouzá pomalu po ulici.
Žena s velkou kabelkou jde u brány.
Chlapci tančící na tyčích uprostřed noci.
Baletní třída pěti dívek skákající v řadě.
Čtyři kluci, tři nosící čepice, jeden ne, skáčou z vrcholu schodiště.
Černý a flekatý pes bojují
Muž v neonově zelené a oranžové uniformě řídí zelený traktor.
Několik žen čeká venku ve městě.
Dáma v černém vršku s brýlemi cukruje bábovku.
Malá holčička sedí před velkou namalovanou duhou.
Muž leží na lavičce, ke které je také přivázán bílý pes.
Pět lidí s nástroji sedí v kruhu.
Parta starších lidí hraje společně na klarinety, zatímco čtou noty.
Velká stavba se rozbila a leží na vozovce.
Velký dav lidí stojí venku před vchodem do stanice metra.
Muž si nechává dělat tetování na svá záda.
Dvě děti sedí na malé houpačce v písku.
Muž, který je oblečený do reflexní vesty a ochranné přilby, drží vlajku na silnici.
Osoba oblečená v modrém plášti stojí na rušném chodníku a studuje obraz ulice.
Muž v zelených kalhotách, který jde po ulici.
Malé dítě leze na červená lana na dětském hřišti.
Ty víš, že vypadám jako Justin Bieber.
Mladý muž v černo-žluté bundě na něco zírá a směje se.
Muž, který stojí u pisoáru s hrnkem kávy.
Pět lidí, kteří jdou s barevnou oblohou v pozadí.
Starý muž, který pije sám pivo.
Vycvičený policejní pes sedí vedle svého trenéra před policejní dodávkou.
Osoba, která jede na kole po zasněžené cestě.
Pět mužů, jednotně oblečených v bílé košili, kravatě a černých volných kalhotách hovoří u zadní části otevřené dodávky.
Muž s čepicí kšiltem dozadu pracuje se stroji.
Černá žena a bílý muž pracují v továrně a balí sklenice se svíčkami do krabic.
Asiský muž, který zametá cestu pro pěší.
Muž se naklání do auta a mluví k řidiči a muž na kole se na to dívá.
Dvě mladá batolata, která jsou venku na trávě.
Lidé sledují osobu v divném vozítku na náměstí.
Muž kráčí kolem stříbrného vozidla.
Krásná nevěsta, která jde na chodníku s svým novým manželem.
Malý chlapec hrající kostičky v McDonaldu.
Bílý pes se třese na břehu pláže s oranžovým míčem.
Skupina lidí griluje v parku.
Muž ve slunečních brýlích dává svou paži okolo ženy v černo-bílé halence.
