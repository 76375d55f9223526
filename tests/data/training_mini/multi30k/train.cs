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
